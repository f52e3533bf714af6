package actor

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait in these tests; a healthy run never gets
// near it.
const waitTimeout = 10 * time.Second

// quietLogger discards the runtime's logs in tests that provoke errors.
var quietLogger = slog.New(slog.NewTextHandler(io.Discard, nil))

// newSystem returns a system that is shut down (and checked) when the test
// ends.
func newSystem(t *testing.T, cfg ...Config) *System {
	t.Helper()
	var c Config
	if len(cfg) > 0 {
		c = cfg[0]
	}
	if c.Logger == nil {
		c.Logger = quietLogger
	}
	sys, err := NewSystem(c)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
		defer cancel()
		if err := sys.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return sys
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// recorder collects values from actors for assertions.
type recorder struct {
	mu     sync.Mutex
	items  []any
	notify chan struct{}
}

func newRecorder() *recorder { return &recorder{notify: make(chan struct{}, 1)} }

func (r *recorder) add(v any) {
	r.mu.Lock()
	r.items = append(r.items, v)
	r.mu.Unlock()
	select {
	case r.notify <- struct{}{}:
	default:
	}
}

func (r *recorder) snapshot() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]any(nil), r.items...)
}

// waitLen waits until at least n items were recorded and returns them.
func (r *recorder) waitLen(t *testing.T, n int) []any {
	t.Helper()
	timer := time.NewTimer(waitTimeout)
	defer timer.Stop()
	for {
		if items := r.snapshot(); len(items) >= n {
			return items
		}
		select {
		case <-r.notify:
		case <-timer.C:
			t.Fatalf("timed out waiting for %d items; have %v", n, r.snapshot())
		}
	}
}

// receive is a typed ReceiveFunc helper: it records every message except
// the lifecycle ones it is not asked about.
func recordAll(r *recorder) ReceiveFunc {
	return func(c Context) { r.add(c.Message()) }
}

// stopped waits until pid is gone.
func stopAndWait(t *testing.T, sys *System, pid *PID) {
	t.Helper()
	if err := sys.StopAndWait(testContext(t), pid); err != nil {
		t.Fatalf("stop %s: %v", pid.Id, err)
	}
}

// deadLetters subscribes to dead letters for the test's duration.
func deadLetters(t *testing.T, sys *System) *recorder {
	r := newRecorder()
	sub := Subscribe(sys.EventStream(), func(e *DeadLetterEvent) { r.add(e) })
	t.Cleanup(sub.Unsubscribe)
	return r
}
