package remote

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

func TestMain(m *testing.M) {
	if runPeerProcess() {
		return
	}
	goleak.VerifyTestMain(m)
}

// node is an actor system with a started Remote.
type node struct {
	sys  *actor.System
	r    *Remote
	logs *testkit.Logs
}

// fastConfig keeps failure handling quick in tests.
func fastConfig() Config {
	return Config{
		ReconnectBackoff:    5 * time.Millisecond,
		MaxReconnectBackoff: 50 * time.Millisecond,
		ReconnectTimeout:    500 * time.Millisecond,
		DialTimeout:         time.Second,
		HandshakeTimeout:    time.Second,
	}
}

// startNode starts a system and its Remote on an ephemeral loopback port;
// both are shut down when the test ends.
func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	return startNodeAfter(t, cfg, func(*actor.System) {})
}

// startNodeAfter is startNode that runs before on the system before its
// Remote starts.
func startNodeAfter(t *testing.T, cfg Config, before func(*actor.System)) *node {
	t.Helper()
	logs := testkit.NewLogs()
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	before(sys)
	r, err := New(sys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{sys: sys, r: r, logs: logs}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *node) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	if err := n.r.Shutdown(ctx); err != nil {
		t.Errorf("remote shutdown: %v", err)
	}
	if err := n.sys.Shutdown(ctx); err != nil {
		t.Errorf("system shutdown: %v", err)
	}
}

// deadLetters records the dead letters of n's system until the test ends.
func (n *node) deadLetters(t *testing.T) *testkit.Recorder[*actor.DeadLetterEvent] {
	dl := &testkit.Recorder[*actor.DeadLetterEvent]{}
	sub := actor.Subscribe(n.sys.EventStream(), func(e *actor.DeadLetterEvent) { dl.Add(e) })
	t.Cleanup(sub.Unsubscribe)
	return dl
}

// echo answers a StringValue with the same text, prefixed with the header
// value "prefix" if any.
func echo(c actor.Context) {
	if m, ok := c.Message().(*wrapperspb.StringValue); ok {
		c.Respond(wrapperspb.String(c.Header().Get("prefix") + m.GetValue()))
	}
}

func str(s string) *wrapperspb.StringValue { return wrapperspb.String(s) }

// watchRemote spawns on sys an actor that watches far and records the
// Terminated it receives. It returns once the Watch is in place: a request
// to sync, at far's address, goes after the Watch on the same stream, and
// its answer (a reply or a dead-letter response) comes back after.
func watchRemote(sys *actor.System, far, sync *actor.PID) *testkit.Recorder[*actor.Terminated] {
	got := &testkit.Recorder[*actor.Terminated]{}
	ready := make(chan struct{})
	sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Watch(far)
			c.Request(sync, str("sync"))
		case *wrapperspb.StringValue, *actor.DeadLetterResponse:
			close(ready) // the answer to sync
		case *actor.Terminated:
			got.Add(m)
		}
	}))
	<-ready
	return got
}
