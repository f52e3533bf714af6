package bench

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMain(m *testing.M) {
	RunChildIfAsked()
	os.Exit(m.Run())
}

// benchSides runs each side of s as a sub-benchmark of its own, for
// profiling one side at a time, and reports the first figure of its last
// run in unit. The table of record comes from cmd/troupe-bench, which
// interleaves the sides.
func benchSides(b *testing.B, s Scenario, unit string) {
	for _, side := range s.sides() {
		b.Run(strings.ReplaceAll(side.name, " ", "-"), func(b *testing.B) {
			var last []float64
			for b.Loop() {
				f, err := side.run()
				if err != nil {
					b.Fatal(err)
				}
				last = f
			}
			b.ReportMetric(last[0], unit)
		})
	}
}

// BenchmarkScenarios runs the scenarios of cmd/troupe-bench at their quick
// sizes, one sub-benchmark per scenario and side, e.g. (in bench/)
//
//	go test -run '^$' -bench 'Scenarios/spawn-stop/troupe' -cpuprofile cpu.out
//
// The profile covers this process only: for the child processes of the
// remote and cluster scenarios, see TROUPE_BENCH_CHILD_CPUPROFILE in the
// package documentation.
func BenchmarkScenarios(b *testing.B) {
	for _, s := range AllScenarios(QuickSizes()) {
		b.Run(s.Key, func(b *testing.B) {
			benchSides(b, s, strings.ReplaceAll(s.Metrics[0].Unit, "ns/op", "ns/request"))
		})
	}
}

// TestScenariosRun keeps the benchmark code honest in `go test`: every
// scenario completes on both runtimes at a tiny size and reports a positive
// figure.
func TestScenariosRun(t *testing.T) {
	sz := QuickSizes()
	sz.PingPong.Messages = 1_000
	sz.FanIn.Messages = 1_000
	sz.Request = RequestConfig{Requests: 100, Warmup: 10}
	sz.SpawnStop = 100
	sz.IdleActors = 100
	sz.Remote = RemoteConfig{Messages: 1_000, Requests: 20, Warmup: 5}
	sz.Cluster = ClusterConfig{Members: 3, Requests: 20, Warmup: 5, Activations: 100, HandoverGrains: 100}
	scenarios := AllScenarios(sz)
	rows, err := Run(scenarios, 1, testWriter{t})
	if err != nil {
		t.Fatal(err)
	}
	floors := 0
	for _, s := range scenarios {
		if s.Floor != nil {
			floors += len(s.Metrics)
		}
	}
	for _, r := range rows {
		if r.Troupe <= 0 || r.Proto <= 0 {
			t.Errorf("%s: troupe %v, protoactor-go %v; want both positive", r.Name, r.Troupe, r.Proto)
		}
		if r.Floor > 0 {
			floors--
		}
	}
	if floors != 0 {
		t.Errorf("%d rows of scenarios with a floor have none", floors)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// With TROUPE_BENCH_TRACE set, a latency scenario leaves an execution
// trace of each of its processes.
func TestLatencyScenarioWritesTraces(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "traces") // made by the scenario
	t.Setenv(traceEnv, dir)
	if _, err := TroupeRemoteRequest(RemoteConfig{Requests: 20, Warmup: 5}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"remote-request-troupe.trace", "node2-troupe.trace"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("go 1.")) {
			t.Fatalf("%s does not start as an execution trace: %.20q", name, b)
		}
	}
}
