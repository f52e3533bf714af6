package bench

import (
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"
)

// Metric names one figure a scenario reports.
type Metric struct {
	// Name and Unit label the figure's row in the table.
	Name, Unit string
	// HigherIsBetter is true for rates, false for times and sizes.
	HigherIsBetter bool
}

// Scenario measures the same workload on Troupe and on protoactor-go. Each
// run function returns one figure per metric.
type Scenario struct {
	// Key names the scenario on the command line and in benchmark names.
	Key string
	// Metrics are the figures each run reports, in order.
	Metrics []Metric
	// Troupe and Proto run the workload once on each runtime.
	Troupe func() ([]float64, error)
	Proto  func() ([]float64, error)
	// Floor, if set, runs the same workload on the bare transport, with no
	// actor runtime (see FloorRemoteRequest): what no runtime can beat.
	Floor func() ([]float64, error)
}

// Run runs every scenario runs times, interleaving the sides (Troupe,
// protoactor-go, the floor) so that all see the same machine load, each
// run starting with the next side, and returns the medians. Progress goes
// to log.
func Run(scenarios []Scenario, runs int, log io.Writer) ([]Row, error) {
	var rows []Row
	for _, s := range scenarios {
		sides := s.sides()
		for i := range runs {
			// Each run starts with the next side, so that none always
			// follows the same one (and inherits its leftovers).
			for k := range sides {
				side := sides[(i+k)%len(sides)]
				runtime.GC()
				figures, err := side.run()
				if err != nil {
					return nil, fmt.Errorf("%s, %s: %w", s.Metrics[0].Name, side.name, err)
				}
				for m, f := range figures {
					side.out[m] = append(side.out[m], f)
				}
				fmt.Fprintf(log, "run %d/%d %-14s %-40s %v\n", i+1, runs, side.name, s.Metrics[0].Name, figures)
			}
		}
		for m, metric := range s.Metrics {
			row := Row{Name: metric.Name, Unit: metric.Unit, HigherIsBetter: metric.HigherIsBetter,
				Troupe: median(sides[0].out[m]), Proto: median(sides[1].out[m])}
			if s.Floor != nil {
				row.Floor = median(sides[2].out[m])
			}
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// side is one runtime's (or the floor's) runs of a scenario: a figure per
// metric and run.
type side struct {
	name string
	run  func() ([]float64, error)
	out  [][]float64
}

// sides returns the scenario's sides: Troupe, protoactor-go, and the floor
// if it has one.
func (s Scenario) sides() []side {
	sides := []side{{name: "troupe", run: s.Troupe}, {name: "protoactor-go", run: s.Proto}}
	if s.Floor != nil {
		sides = append(sides, side{name: "bare gRPC", run: s.Floor})
	}
	for i := range sides {
		sides[i].out = make([][]float64, len(s.Metrics))
	}
	return sides
}

// Sizes scales every scenario: FullSizes are the shapes of record,
// QuickSizes are for smoke runs.
type Sizes struct {
	// Cluster, Remote, PingPong, FanIn and Request shape the scenarios of
	// the same names.
	Cluster  ClusterConfig
	Remote   RemoteConfig
	PingPong PingPongConfig
	FanIn    FanInConfig
	Request  RequestConfig
	// SpawnStop is how many actors the spawn-and-stop scenario spawns;
	// IdleActors how many the heap-per-actor scenario keeps.
	SpawnStop  int
	IdleActors int
}

// FullSizes are the benchmark shapes of record.
func FullSizes() Sizes {
	return Sizes{Cluster: DefaultCluster(), Remote: DefaultRemote(), PingPong: DefaultPingPong(), FanIn: DefaultFanIn(), Request: DefaultRequest(), SpawnStop: 200_000, IdleActors: 1_000_000}
}

// QuickSizes finish in seconds.
func QuickSizes() Sizes {
	pp := DefaultPingPong()
	pp.Messages = 50_000
	fan := DefaultFanIn()
	fan.Messages = 50_000
	return Sizes{
		Cluster: ClusterConfig{Members: 3, Requests: 2_000, Warmup: 200, Activations: 10_000, HandoverGrains: 10_000},
		Remote:  RemoteConfig{Messages: 100_000, Requests: 2_000, Warmup: 200}, PingPong: pp, FanIn: fan, Request: RequestConfig{Requests: 20_000, Warmup: 1_000}, SpawnStop: 20_000, IdleActors: 50_000}
}

// LocalScenarios are the in-process actor runtime comparisons.
func LocalScenarios(sz Sizes) []Scenario {
	rate := func(n int, run func() (time.Duration, error)) func() ([]float64, error) {
		return func() ([]float64, error) {
			d, err := run()
			return []float64{float64(n) / d.Seconds()}, err
		}
	}
	latency := func(run func(RequestConfig) (Latency, error)) func() ([]float64, error) {
		return func() ([]float64, error) {
			l, err := run(sz.Request)
			return []float64{float64(l.Mean), micros(l.P50), micros(l.P99)}, err
		}
	}
	bytes := func(run func(int) (float64, error)) func() ([]float64, error) {
		return func() ([]float64, error) {
			b, err := run(sz.IdleActors)
			return []float64{b}, err
		}
	}
	pp := sz.PingPong
	ppUnbounded := pp
	ppUnbounded.Capacity = 0
	return []Scenario{
		{
			Key:     "pingpong-bounded",
			Metrics: []Metric{{fmt.Sprintf("in-process ping-pong, %d pairs, bounded mailboxes", pp.Pairs), "msg/s", true}},
			Troupe:  rate(pp.Total(), func() (time.Duration, error) { return TroupePingPong(pp) }),
			Proto:   rate(pp.Total(), func() (time.Duration, error) { return ProtoPingPong(pp) }),
		},
		{
			Key:     "pingpong-default",
			Metrics: []Metric{{fmt.Sprintf("in-process ping-pong, %d pairs, default mailboxes", pp.Pairs), "msg/s", true}},
			Troupe:  rate(pp.Total(), func() (time.Duration, error) { return TroupePingPong(ppUnbounded) }),
			Proto:   rate(pp.Total(), func() (time.Duration, error) { return ProtoPingPong(ppUnbounded) }),
		},
		{
			Key:     "fan-in",
			Metrics: []Metric{{fmt.Sprintf("mailbox fan-in, %d senders to 1 actor", sz.FanIn.Senders), "msg/s", true}},
			Troupe:  rate(sz.FanIn.Total(), func() (time.Duration, error) { return TroupeFanIn(sz.FanIn) }),
			Proto:   rate(sz.FanIn.Total(), func() (time.Duration, error) { return ProtoFanIn(sz.FanIn) }),
		},
		{
			Key: "request",
			Metrics: []Metric{
				{"local request/response, mean", "ns/op", false},
				{"local request/response, p50", "µs", false},
				{"local request/response, p99", "µs", false},
			},
			Troupe: latency(TroupeRequest),
			Proto:  latency(ProtoRequest),
		},
		{
			Key:     "spawn-stop",
			Metrics: []Metric{{"spawn and stop", "actors/s", true}},
			Troupe:  rate(sz.SpawnStop, func() (time.Duration, error) { return TroupeSpawnStop(sz.SpawnStop) }),
			Proto:   rate(sz.SpawnStop, func() (time.Duration, error) { return ProtoSpawnStop(sz.SpawnStop) }),
		},
		{
			Key:     "idle-bytes",
			Metrics: []Metric{{fmt.Sprintf("heap per idle actor, %d actors", sz.IdleActors), "B/actor", false}},
			Troupe:  bytes(TroupeIdleBytes),
			Proto:   bytes(ProtoIdleBytes),
		},
	}
}

// RemoteScenarios are the comparisons across two OS processes on loopback.
func RemoteScenarios(sz Sizes) []Scenario {
	rc := sz.Remote
	latency := func(run func(RemoteConfig) (Latency, error)) func() ([]float64, error) {
		return func() ([]float64, error) {
			l, err := run(rc)
			return l.percentiles(), err
		}
	}
	rate := func(run func(RemoteConfig) (time.Duration, error)) func() ([]float64, error) {
		return func() ([]float64, error) {
			d, err := run(rc)
			return []float64{float64(2*rc.Messages) / d.Seconds()}, err
		}
	}
	return []Scenario{
		{
			Key:     "remote-pingpong",
			Metrics: []Metric{{fmt.Sprintf("remote ping-pong, %d pings, 2 processes", rc.Messages), "msg/s", true}},
			Troupe:  rate(TroupeRemotePingPong),
			Proto:   rate(ProtoRemotePingPong),
		},
		{
			Key: "remote-request",
			Metrics: []Metric{
				{"remote request/response, p50", "µs", false},
				{"remote request/response, p99", "µs", false},
			},
			Troupe: latency(TroupeRemoteRequest),
			Proto:  latency(ProtoRemoteRequest),
			Floor:  latency(FloorRemoteRequest),
		},
	}
}

// ClusterScenarios compare in-process clusters of sz.Cluster.Members
// members, each side run in a child process of its own.
func ClusterScenarios(sz Sizes) []Scenario {
	side := func(role string) func() ([]float64, error) {
		return func() ([]float64, error) { return inChild(role, sz.Cluster) }
	}
	cc := sz.Cluster
	return []Scenario{
		{
			Key: "cluster-request",
			Metrics: []Metric{
				{fmt.Sprintf("grain request to another member, %d members, p50", cc.Members), "µs", false},
				{fmt.Sprintf("grain request to another member, %d members, p99", cc.Members), "µs", false},
			},
			Troupe: side("cluster-request/troupe"),
			Proto:  side("cluster-request/protoactor"),
			Floor:  side("cluster-request/grpc"),
		},
		{
			Key:     "cluster-activations",
			Metrics: []Metric{{fmt.Sprintf("activations of new identities, %d", cc.Activations), "grains/s", true}},
			Troupe:  side("cluster-activations/troupe"),
			Proto:   side("cluster-activations/protoactor"),
		},
		{
			Key:     "cluster-handover",
			Metrics: []Metric{{fmt.Sprintf("service restored after a join, %d active grains", cc.HandoverGrains), "s", false}},
			Troupe:  side("cluster-handover/troupe"),
			Proto:   side("cluster-handover/protoactor"),
		},
	}
}

// AllScenarios are the local, remote and cluster scenarios.
func AllScenarios(sz Sizes) []Scenario {
	return append(append(LocalScenarios(sz), RemoteScenarios(sz)...), ClusterScenarios(sz)...)
}

// newProtoSystem returns a protoactor-go system that does not log.
func newProtoSystem() *pactor.ActorSystem {
	return pactor.NewActorSystem(pactor.WithLoggerFactory(func(*pactor.ActorSystem) *slog.Logger {
		return slog.New(slog.NewTextHandler(io.Discard, nil))
	}))
}
