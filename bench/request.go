package bench

import (
	"context"
	"slices"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"

	"github.com/troupehq/troupe/sdk/actor"
)

// Latency summarises round-trip times.
type Latency struct {
	// Mean, P50 and P99 are over the measured round trips.
	Mean, P50, P99 time.Duration
}

// summarize sorts samples and returns their mean and percentiles.
func summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	pct := func(p float64) time.Duration { return samples[int(float64(len(samples)-1)*p)] }
	return Latency{Mean: sum / time.Duration(len(samples)), P50: pct(0.50), P99: pct(0.99)}
}

// percentiles returns the p50 and p99 in microseconds, the figures of the
// remote and cluster latency scenarios.
func (l Latency) percentiles() []float64 { return []float64{micros(l.P50), micros(l.P99)} }

// RequestConfig is the shape of the local request scenario: Requests
// sequential request/response round trips from a non-actor caller to an
// echo actor, after Warmup unmeasured ones.
type RequestConfig struct {
	Requests, Warmup int
}

// DefaultRequest is the local request/response shape.
func DefaultRequest() RequestConfig { return RequestConfig{Requests: 200_000, Warmup: 10_000} }

type echoReq struct{}

// requestTimeout bounds each benchmark request, on either runtime; it never
// fires in a healthy run.
const requestTimeout = 10 * time.Second

// withRequestTimeout calls call with a context of its own that expires
// after requestTimeout: each Troupe request pays for its own deadline, as
// each protoactor-go request does for the timeout it is given.
func withRequestTimeout(call func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	return call(ctx)
}

// sampleLatency makes warmup+requests sequential calls, stopping at the
// first failure, and summarizes the round-trip times of the last requests.
// With TROUPE_BENCH_TRACE set, the measured requests are traced (see
// startTrace): name, a scenario key and side, names the trace.
func sampleLatency(name string, warmup, requests int, call func() error) (Latency, error) {
	samples := make([]time.Duration, 0, requests)
	stopTrace := func() error { return nil }
	for i := range warmup + requests {
		if i == warmup {
			var err error
			if stopTrace, err = startTrace(name); err != nil {
				return Latency{}, err
			}
		}
		measured := i >= warmup
		start := time.Now()
		if measured {
			markRequest(requestStart)
		}
		if err := call(); err != nil {
			_ = stopTrace()
			return Latency{}, err
		}
		if measured {
			samples = append(samples, time.Since(start))
			markRequest(requestEnd)
		}
	}
	if err := stopTrace(); err != nil {
		return Latency{}, err
	}
	return summarize(samples), nil
}

// troupeRequest returns a call that sends msg to pid with System.Request
// and waits for the answer, with a deadline of its own.
func troupeRequest(sys *actor.System, pid *actor.PID, msg any) func() error {
	return func() error {
		return withRequestTimeout(func(ctx context.Context) error {
			_, err := sys.Request(ctx, pid, msg)
			return err
		})
	}
}

// protoRequest returns a call that sends msg to pid with
// RequestFuture(...).Result(), bounded by requestTimeout.
func protoRequest(root *pactor.RootContext, pid *pactor.PID, msg any) func() error {
	return func() error {
		_, err := root.RequestFuture(pid, msg, requestTimeout).Result()
		return err
	}
}

// TroupeRequest measures Troupe's System.Request round trip.
func TroupeRequest(cfg RequestConfig) (Latency, error) {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		return Latency{}, err
	}
	defer shutdown(sys)
	pid := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*echoReq); ok {
			c.Respond(m)
		}
	}))
	return sampleLatency("request/troupe", cfg.Warmup, cfg.Requests, troupeRequest(sys, pid, &echoReq{}))
}

// ProtoRequest measures protoactor-go's RequestFuture(...).Result() round trip.
func ProtoRequest(cfg RequestConfig) (Latency, error) {
	sys := newProtoSystem()
	defer sys.Shutdown()
	root := sys.Root
	pid := root.Spawn(pactor.PropsFromFunc(func(c pactor.Context) {
		if m, ok := c.Message().(*echoReq); ok {
			c.Respond(m)
		}
	}))
	lat, err := sampleLatency("request/protoactor", cfg.Warmup, cfg.Requests, protoRequest(root, pid, &echoReq{}))
	_ = root.StopFuture(pid).Wait()
	return lat, err
}
