package actor

import (
	"context"
	"io"
	"log/slog"
	"testing"

	"go.uber.org/goleak"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

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
		ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
		defer cancel()
		if err := sys.Shutdown(ctx); err != nil {
			t.Errorf("shutdown: %v", err)
		}
	})
	return sys
}

// recorder collects values from actors for assertions.
type recorder = testkit.Recorder[any]

func newRecorder() *recorder { return &recorder{} }

// recordAll records every message the actor receives.
func recordAll(r *recorder) ReceiveFunc {
	return func(c Context) { r.Add(c.Message()) }
}

// stopAndWait stops pid and waits until it is gone.
func stopAndWait(t *testing.T, sys *System, pid *PID) {
	t.Helper()
	if err := sys.StopAndWait(testkit.Context(t), pid); err != nil {
		t.Fatalf("stop %s: %v", pid.Id, err)
	}
}

// deadLetters subscribes to dead letters for the test's duration.
func deadLetters(t *testing.T, sys *System) *recorder {
	r := newRecorder()
	sub := Subscribe(sys.EventStream(), func(e *DeadLetterEvent) { r.Add(e) })
	t.Cleanup(sub.Unsubscribe)
	return r
}
