package actor

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

func TestShutdownStopsEveryActorAndFailsFutures(t *testing.T) {
	sys, err := NewSystem(Config{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	stopped := newRecorder()
	props := PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			c.Spawn(PropsFromFunc(func(c Context) {
				if _, ok := c.Message().(*Stopped); ok {
					stopped.Add("child")
				}
			}))
		case *Stopped:
			stopped.Add("parent")
		}
	})
	for range 10 {
		sys.Spawn(props)
	}
	// silent takes the request and never answers it; the round trip after
	// it proves it was taken rather than left in the mailbox (where Stop
	// would dead-letter it).
	silent := sys.Spawn(PropsFromFunc(func(c Context) {
		if c.Message() == "sync" {
			c.Respond("ok")
		}
	}))
	pending := sys.RequestFuture(silent, "never answered", time.Hour)
	if _, err := sys.Request(testkit.Context(t), silent, "sync"); err != nil {
		t.Fatal(err)
	}
	if err := sys.Shutdown(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	if n := len(stopped.Snapshot()); n != 20 {
		t.Fatalf("%d actors got Stopped, want 20", n)
	}
	if n := sys.Registry().Count(); n != 0 {
		t.Fatalf("%d processes left after shutdown", n)
	}
	if _, err := pending.Result(); !errors.Is(err, ErrSystemShutdown) {
		t.Fatalf("pending future: err = %v, want ErrSystemShutdown", err)
	}
	if _, err := sys.SpawnNamed(props, "late"); !errors.Is(err, ErrSystemShutdown) {
		t.Fatalf("spawn after shutdown: err = %v, want ErrSystemShutdown", err)
	}
	if err := sys.Shutdown(testkit.Context(t)); err != nil {
		t.Fatalf("second shutdown: %v", err)
	}
}

func TestShutdownHonoursItsContext(t *testing.T) {
	sys, err := NewSystem(Config{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	entered := make(chan struct{})
	stuck := sys.Spawn(PropsFromFunc(func(c Context) {
		if c.Message() == "hang" {
			close(entered)
			<-gate
		}
	}))
	sys.Send(stuck, "hang")
	<-entered
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := sys.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "1 top-level") {
		t.Fatalf("shutdown with a stuck actor: err = %v", err)
	}
	close(gate)
	if err := sys.Shutdown(testkit.Context(t)); err != nil {
		t.Fatalf("shutdown once unstuck: %v", err)
	}
}

func TestDeadLetterLogIsThrottled(t *testing.T) {
	h := testkit.NewLogs()
	now := time.Unix(0, 0)
	l := &deadLetterLogger{logger: slog.New(h), interval: time.Second, burst: 3, now: func() time.Time { return now }}
	ev := &DeadLetterEvent{PID: NewPID(LocalAddress, "nobody"), Message: "x", Reason: ErrDeadLetter}
	for range 50 {
		l.handle(ev)
	}
	if n := h.Count("actor: dead letter "); n != 3 {
		t.Fatalf("logged %d dead letters in one interval, want 3", n)
	}
	if n := h.Count("actor: dead letters suppressed"); n != 0 {
		t.Fatalf("summary logged before the interval ended")
	}
	now = now.Add(2 * time.Second)
	l.handle(ev)
	if n := h.Count("actor: dead letters suppressed count=47 "); n != 1 {
		t.Fatalf("summary lines: %v", h.Lines())
	}
	if n := h.Count("actor: dead letter "); n != 4 {
		t.Fatalf("the first dead letter of a new interval was not logged: %v", h.Lines())
	}

	// Wired into a system, the burst applies to real dead letters.
	h2 := testkit.NewLogs()
	sys := newSystem(t, Config{Logger: slog.New(h2), DeadLetterLogBurst: 2, DeadLetterLogInterval: time.Hour})
	dl := deadLetters(t, sys)
	for range 10 {
		sys.Send(NewPID(LocalAddress, "nobody"), "x")
	}
	dl.WaitLen(t, 10)
	if n := h2.Count("actor: dead letter "); n != 2 {
		t.Fatalf("system logged %d dead letters, want its burst of 2", n)
	}
}

func TestDeadLetterLoggingCanBeTurnedOff(t *testing.T) {
	h := testkit.NewLogs()
	sys := newSystem(t, Config{Logger: slog.New(h), DeadLetterLogBurst: -1})
	dl := deadLetters(t, sys)
	sys.Send(NewPID(LocalAddress, "nobody"), "x")
	dl.WaitLen(t, 1)
	if n := h.Count("actor: dead letter"); n != 0 {
		t.Fatalf("logged %d dead letters with logging off", n)
	}
}
