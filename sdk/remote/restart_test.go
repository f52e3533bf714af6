package remote

import (
	"context"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// probe is a process that records every message it receives, system and
// user alike, in the order they arrive: a watcher, or a target, that
// shows what the transport delivered rather than what an actor keeps.
type probe struct{ got testkit.Recorder[any] }

func (p *probe) SendUserMessage(_ *actor.PID, m any)   { p.got.Add(m) }
func (p *probe) SendSystemMessage(_ *actor.PID, m any) { p.got.Add(m) }
func (p *probe) Stop(*actor.PID)                       {}

// addProbe registers a probe on n's system under id.
func addProbe(t *testing.T, sys *actor.System, id string) (*probe, *actor.PID) {
	t.Helper()
	p := &probe{}
	pid, err := sys.Registry().Add(id, p)
	if err != nil {
		t.Fatal(err)
	}
	return p, pid
}

// terminatedOf returns the Terminated messages among a probe's.
func terminatedOf(got []any) []*actor.Terminated {
	var ts []*actor.Terminated
	for _, m := range got {
		if t, ok := m.(*actor.Terminated); ok {
			ts = append(ts, t)
		}
	}
	return ts
}

// restartingPeer starts a, and a first process at a fixed address with a
// named "target" and an actor of generated id, which a reaches; then the
// first process closes as if it crashed, and a's endpoint, which waits out
// ReconnectTimeout, is left reconnecting. start starts the second process
// at the same address, with a probe as its "target" and an echo named
// "echo".
func restartingPeer(t *testing.T) (a *node, named, generated *actor.PID, start func() (second *node, target *probe)) {
	t.Helper()
	addr := freePort(t)
	cfg := fastConfig()
	cfg.BindAddress = addr
	acfg := fastConfig()
	acfg.ReconnectTimeout = testkit.Timeout
	a = startNode(t, acfg)
	first := startNode(t, cfg)
	if _, err := first.sys.SpawnNamed(actor.PropsFromFunc(echo), "target"); err != nil {
		t.Fatal(err)
	}
	generated = first.sys.Spawn(actor.PropsFromFunc(echo))
	named = actor.NewPID(addr, "target")
	for _, pid := range []*actor.PID{named, generated} {
		if _, err := a.sys.Request(testkit.Context(t), pid, str("hello")); err != nil {
			t.Fatal(err)
		}
	}
	first.r.Close()
	testkit.Eventually(t, "a's connection to the first process to be lost", func() bool {
		return a.logs.Contains("connection lost", "peer="+addr)
	})
	start = func() (*node, *probe) {
		var target *probe
		second := startNodeAfter(t, cfg, func(sys *actor.System) {
			target, _ = addProbe(t, sys, "target")
			if _, err := sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
				t.Fatal(err)
			}
		})
		return second, target
	}
	return a, named, generated, start
}

// syncWith returns once everything a queued for addr before the call was
// delivered there, and everything addr sent a in answer reached a: the
// request goes after them on a's stream, and its answer after theirs.
func syncWith(t *testing.T, a *node, addr string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(testkit.Context(t), time.Hour)
	defer cancel()
	if _, err := a.sys.Request(ctx, actor.NewPID(addr, "echo"), str("sync")); err != nil {
		t.Fatal(err)
	}
}

// A Watch still queued when the peer turns out to have restarted is
// answered with AddressTerminated, once, and goes no further: the new
// process gets no watch nobody wants (a named actor of the new process
// would report its end to a watcher that had already heard it), nor one it
// answers with a second Terminated (an id the new process does not have).
// An Unwatch queued likewise goes nowhere either.
func TestAWatchQueuedAcrossARestartIsAnsweredOnceAndNotSent(t *testing.T) {
	a, named, generated, start := restartingPeer(t)
	w, watcher := addProbe(t, a.sys, "watcher")
	// Queued: a is between connections.
	a.sys.SendSystemMessage(named, &actor.Watch{Watcher: watcher})
	a.sys.SendSystemMessage(generated, &actor.Watch{Watcher: watcher})
	a.sys.SendSystemMessage(named, &actor.Unwatch{Watcher: actor.NewPID(a.r.Address(), "unwatcher")})

	second, target := start()
	for _, m := range terminatedOf(w.got.WaitLen(t, 2)) {
		if m.Reason != actor.ReasonAddressTerminated {
			t.Fatalf("Terminated = %v, want AddressTerminated", m)
		}
	}
	syncWith(t, a, second.r.Address())
	if got := w.got.Snapshot(); len(got) != 2 {
		t.Fatalf("the watcher received %d messages for its 2 watches, want 2 AddressTerminated: %v", len(got), got)
	}
	if got := target.got.Snapshot(); len(got) > 0 {
		t.Fatalf("the new process's target received %v, queued for the old process", got)
	}
}
