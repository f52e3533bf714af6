package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	rtrace "runtime/trace"
	"strings"
	"testing"

	"golang.org/x/exp/trace"
)

// echoer answers each value from in on out.
func echoer(in <-chan int, out chan<- int) {
	for v := range in {
		out <- v
	}
}

// traceRequests writes a trace of this process making n requests to an
// echoer goroutine, marked as bench marks them, and returns its path.
func traceRequests(t *testing.T, n int, mark bool) string {
	path := filepath.Join(t.TempDir(), "client.trace")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := rtrace.Start(f); err != nil {
		t.Fatal(err)
	}
	in, out := make(chan int), make(chan int)
	go echoer(in, out)
	ctx := context.Background()
	for i := range n {
		if mark {
			rtrace.Log(ctx, requestCategory, requestStart)
		}
		in <- i
		<-out
		if mark {
			rtrace.Log(ctx, requestCategory, requestEnd)
		}
	}
	close(in)
	rtrace.Stop()
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestReportLinesUpTheMarkedRequests(t *testing.T) {
	p, err := load(traceRequests(t, 50, true))
	if err != nil {
		t.Fatal(err)
	}
	if len(p.requests) != 50 {
		t.Fatalf("found %d requests, want 50", len(p.requests))
	}
	var out bytes.Buffer
	if err := report(&out, []*process{p}, 1, 0.5); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	t.Log(got)
	for _, want := range []string{"50 requests: p50", "client", "request of", "tracestages.echoer"} {
		if !strings.Contains(got, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	// Each request wakes the echoer, which wakes the caller back.
	if !strings.Contains(got, "Waiting→Runnable") {
		t.Error("report shows no wake-up")
	}
}

func TestReportShowsTheRequestsNearestTheQuantile(t *testing.T) {
	p, err := load(traceRequests(t, 50, true))
	if err != nil {
		t.Fatal(err)
	}
	fastest, slowest := p.requests[0].duration(), p.requests[0].duration()
	for _, r := range p.requests {
		fastest, slowest = min(fastest, r.duration()), max(slowest, r.duration())
	}
	for q, want := range map[float64]trace.Time{0: fastest, 1: slowest} {
		var out bytes.Buffer
		if err := report(&out, []*process{p}, 1, q); err != nil {
			t.Fatal(err)
		}
		line := fmt.Sprintf("request of %.1f µs", micros(want))
		if got := out.String(); strings.Count(got, "request of ") != 1 || !strings.Contains(got, line) {
			t.Errorf("q=%v: report shows other than the one %q:\n%s", q, line, got)
		}
	}
	// At the end of the list, the n requests shift to fit: all three show.
	var out bytes.Buffer
	if err := report(&out, []*process{p}, 3, 1); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); strings.Count(got, "request of ") != 3 || !strings.Contains(got, fmt.Sprintf("request of %.1f µs", micros(slowest))) {
		t.Errorf("-n 3 -q 1 shows other than the three slowest:\n%s", got)
	}
}

func TestReportWithoutMarksFails(t *testing.T) {
	p, err := load(traceRequests(t, 3, false))
	if err != nil {
		t.Fatal(err)
	}
	err = report(&bytes.Buffer{}, []*process{p}, 1, 0.5)
	if err == nil || !strings.Contains(err.Error(), requestCategory) {
		t.Fatalf("err = %v, want one naming the missing log category", err)
	}
}

func TestLoadRefusesWhatIsNotATrace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "not.trace")
	if err := os.WriteFile(path, []byte("not a trace"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := load(path); err == nil || !strings.Contains(err.Error(), path) {
		t.Fatalf("err = %v, want one naming %s", err, path)
	}
}

func TestStandard(t *testing.T) {
	for fn, want := range map[string]bool{
		"runtime.gopark":                       true,
		"internal/poll.(*FD).Read":             true,
		"main.echoer":                          false,
		"google.golang.org/grpc.(*Server).run": false,
		"github.com/troupehq/troupe/sdk/remote.(*endpoint).pump": false,
	} {
		if got := standard(fn); got != want {
			t.Errorf("standard(%q) = %v, want %v", fn, got, want)
		}
	}
}
