package remote

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// watchOnB spawns an echo actor "target" on b and, on a, an actor that
// watches it and records the Terminated it gets. It returns once a
// request the watcher sent after its Watch, on the same stream, was
// answered, so b has the watch; the PIDs name their systems' addresses.
// after is closed when the watcher receives a string other than "sync".
func watchOnB(t *testing.T, a, b *node) (target, watcher *actor.PID, got *testkit.Recorder[*actor.Terminated], after <-chan struct{}) {
	t.Helper()
	target, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "target")
	if err != nil {
		t.Fatal(err)
	}
	target = actor.NewPID(b.r.Address(), target.Id)
	got = &testkit.Recorder[*actor.Terminated]{}
	ready, other := make(chan struct{}), make(chan struct{})
	watcher, err = a.sys.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(target)
			ctx.Request(target, str("sync")) // after the Watch, on the same stream
		case *actor.Terminated:
			got.Add(m)
		case *wrapperspb.StringValue:
			if m.GetValue() == "sync" {
				close(ready)
			} else {
				close(other)
			}
		}
	}), "watcher")
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	return target, actor.NewPID(a.r.Address(), watcher.Id), got, other
}

// A member reports the end of its own actors only: a Terminated that C
// sends about B's actor is dropped, and A's watch of it stays in place.
func TestAPeerCannotReportAnotherMembersActorTerminated(t *testing.T) {
	a, b, c := startNode(t, fastConfig()), startNode(t, fastConfig()), startNode(t, fastConfig())
	target, watcher, got, after := watchOnB(t, a, b)

	dl := a.deadLetters(t)
	c.sys.SendSystemMessage(watcher, &actor.Terminated{Who: target, Reason: actor.ReasonStopped})
	c.sys.Send(watcher, str("after")) // after the forgery, on the same stream
	<-after
	if s := got.Snapshot(); len(s) > 0 {
		t.Fatalf("the watcher got %v from another member", s[0])
	}
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, ErrProtocol) {
		t.Fatalf("dead letter reason = %v, want ErrProtocol", e.Reason)
	}
	// The real end still reaches the watcher.
	if err := b.sys.StopAndWait(testkit.Context(t), target); err != nil {
		t.Fatal(err)
	}
	if m := got.WaitLen(t, 1)[0]; !m.Who.Equal(target) || m.Reason != actor.ReasonStopped {
		t.Fatalf("Terminated = %v, want %v stopped", m, target)
	}
}

// An actor spawned before its system's Remote started carries the local
// placeholder address in its own PID. Its end still reaches a watcher on
// another member, named by the member's address.
func TestTheEndOfAnActorSpawnedBeforeStartReachesRemoteWatchers(t *testing.T) {
	a := startNode(t, fastConfig())
	var early *actor.PID
	b := startNodeAfter(t, fastConfig(), func(sys *actor.System) {
		var err error
		if early, err = sys.SpawnNamed(actor.PropsFromFunc(echo), "early"); err != nil {
			t.Fatal(err)
		}
	})
	if early.Address != actor.LocalAddress {
		t.Fatalf("an actor spawned before Start has address %q, want %q", early.Address, actor.LocalAddress)
	}
	target := actor.NewPID(b.r.Address(), early.Id)
	var got testkit.Recorder[*actor.Terminated]
	ready := make(chan struct{})
	a.sys.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(target)
			ctx.Request(target, str("sync")) // after the Watch, on the same stream
		case *wrapperspb.StringValue:
			close(ready)
		case *actor.Terminated:
			got.Add(m)
		}
	}))
	<-ready
	if err := b.sys.StopAndWait(testkit.Context(t), early); err != nil {
		t.Fatal(err)
	}
	if m := got.WaitLen(t, 1)[0]; !m.Who.Equal(target) || m.Reason != actor.ReasonStopped {
		t.Fatalf("Terminated = %v, want %v stopped", m, target)
	}
}

// A Watch the transport cannot send answers its watcher at once, as
// watching what does not exist does locally.
func TestAWatchThatCannotBeSentTerminatesAtOnce(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	if err := a.r.Shutdown(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), "whatever")
	var got testkit.Recorder[*actor.Terminated]
	a.sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Watch(far)
		case *actor.Terminated:
			got.Add(m)
		}
	}))
	if m := got.WaitLen(t, 1)[0]; !m.Who.Equal(far) || m.Reason != actor.ReasonAddressTerminated {
		t.Fatalf("Terminated = %v, want %v with AddressTerminated", m, far)
	}
}

// A Watch without its watcher, as a faulty peer may send it, does not
// fail the actor it names.
func TestAWatchWithoutWatcherFromTheNetworkIsADeadLetter(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	var starts atomic.Int32
	victim, err := a.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			starts.Add(1)
		}
		echo(c)
	}), "victim")
	if err != nil {
		t.Fatal(err)
	}
	victim = actor.NewPID(a.r.Address(), victim.Id)
	dl := a.deadLetters(t)
	p, _ := b.r.resolve(a.r.Address())
	p.(*peer).send(victim, &actor.Watch{}, true, 0) // on the wire as a peer would put it
	if _, err := b.sys.Request(testkit.Context(t), victim, str("sync")); err != nil || starts.Load() != 1 {
		t.Fatalf("after the Watch: %v, %d starts; want an answer from the first incarnation", err, starts.Load())
	}
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, actor.ErrNilPID) {
		t.Fatalf("dead letter reason = %v, want ErrNilPID", e.Reason)
	}
}

// An actor spawned before its system's Remote started carries the local
// placeholder address in its own PID. As a watcher of another member's
// actor, it still hears of that actor's end, once.
func TestAWatcherSpawnedBeforeStartHearsOfARemoteEnd(t *testing.T) {
	b := startNode(t, fastConfig())
	target, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "target")
	if err != nil {
		t.Fatal(err)
	}
	target = actor.NewPID(b.r.Address(), target.Id)
	var got testkit.Recorder[*actor.Terminated]
	watch := make(chan struct{})
	ready := make(chan struct{})
	var watcher *actor.PID
	a := startNodeAfter(t, fastConfig(), func(sys *actor.System) {
		watcher = sys.Spawn(actor.PropsFromFunc(func(ctx actor.Context) {
			switch m := ctx.Message().(type) {
			case *wrapperspb.BoolValue: // after Start: watch
				ctx.Watch(target)
				ctx.Request(target, str("sync")) // after the Watch, on the same stream
			case *wrapperspb.StringValue:
				close(ready)
			case *wrapperspb.Int32Value:
				ctx.Respond(m)
			case *actor.Terminated:
				got.Add(m)
			}
		}))
		close(watch)
	})
	<-watch
	if watcher.Address != actor.LocalAddress {
		t.Fatalf("an actor spawned before Start has address %q, want %q", watcher.Address, actor.LocalAddress)
	}
	a.sys.Send(watcher, wrapperspb.Bool(true))
	<-ready
	if err := b.sys.StopAndWait(testkit.Context(t), target); err != nil {
		t.Fatal(err)
	}
	if m := got.WaitLen(t, 1)[0]; !m.Who.Equal(target) || m.Reason != actor.ReasonStopped {
		t.Fatalf("Terminated = %v, want %v stopped", m, target)
	}
	// The Terminated delivered ends the watch: the end of B's endpoint
	// tells the watcher nothing more.
	var ended testkit.Recorder[*EndpointTerminated]
	sub := actor.Subscribe(a.sys.EventStream(), func(e *EndpointTerminated) { ended.Add(e) })
	defer sub.Unsubscribe()
	a.r.TerminateEndpoint(b.r.Address(), nil)
	ended.WaitLen(t, 1)
	// A Terminated sent before goes before the answer.
	if _, err := a.sys.Request(testkit.Context(t), watcher, wrapperspb.Int32(0)); err != nil {
		t.Fatal(err)
	}
	if n := len(got.Snapshot()); n != 1 {
		t.Fatalf("the watcher received %d Terminated, want 1: %v", n, got.Snapshot())
	}
}

// A member speaks for its own actors only as watchers too: an Unwatch
// that C sends for A's watcher is dropped, and the watch stays in place.
func TestAPeerCannotUnwatchForAnotherMember(t *testing.T) {
	a, b, c := startNode(t, fastConfig()), startNode(t, fastConfig()), startNode(t, fastConfig())
	target, watcher, got, _ := watchOnB(t, a, b)

	dl := b.deadLetters(t)
	c.sys.SendSystemMessage(target, &actor.Unwatch{Watcher: watcher})
	// After the forgery, on the same stream.
	if _, err := c.sys.Request(testkit.Context(t), target, str("sync")); err != nil {
		t.Fatal(err)
	}
	if err := b.sys.StopAndWait(testkit.Context(t), target); err != nil {
		t.Fatal(err)
	}
	if m := got.WaitLen(t, 1)[0]; !m.Who.Equal(target) || m.Reason != actor.ReasonStopped {
		t.Fatalf("Terminated = %v, want %v stopped", m, target)
	}
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, ErrProtocol) {
		t.Fatalf("dead letter reason = %v, want ErrProtocol", e.Reason)
	}
}

// A watcher that watches a remote actor twice has one watch of it, as
// locally: when the endpoint ends with both Watch messages queued, it is
// told once.
func TestAWatcherThatWatchesTwiceIsToldOnceWhenTheEndpointEnds(t *testing.T) {
	cfg := fastConfig()
	cfg.ReconnectTimeout = testkit.Timeout // only TerminateEndpoint ends it
	a := startNode(t, cfg)
	far := actor.NewPID(freePort(t), "ghost")
	w, watcher := addProbe(t, a.sys, "watcher")
	// Both queued: there is no connection.
	a.sys.SendSystemMessage(far, &actor.Watch{Watcher: watcher})
	a.sys.SendSystemMessage(far, &actor.Watch{Watcher: watcher})
	a.r.TerminateEndpoint(far.Address, nil)
	// The writer is gone once it has rejected what was queued and told
	// the watchers.
	testkit.Eventually(t, "the endpoint to terminate", func() bool {
		a.r.mu.Lock()
		defer a.r.mu.Unlock()
		return len(a.r.endpoints) == 0
	})
	got := w.got.Snapshot()
	if len(got) != 1 {
		t.Fatalf("the watcher received %v for its one watch, want one Terminated", got)
	}
	if m, ok := got[0].(*actor.Terminated); !ok || !m.Who.Equal(far) || m.Reason != actor.ReasonAddressTerminated {
		t.Fatalf("the watcher received %v, want AddressTerminated for %v", got[0], far)
	}
}

// A watch ends once: after TerminateEndpoint told the watcher of a peer
// that is in fact still running (AddressTerminated), the watched actor's
// own Terminated, which the peer still sends when it stops, is not
// delivered as a second end of the same watch.
func TestAWatchEndedByTerminateEndpointEndsOnce(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	if _, err := a.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
		t.Fatal(err)
	}
	echoOnA := actor.NewPID(a.r.Address(), "echo")
	target, parent := spawnUnder(t, b.sys, "target")
	w, watcher := addProbe(t, a.sys, "watcher")
	a.sys.SendSystemMessage(target, &actor.Watch{Watcher: watcher})
	if _, err := a.sys.Request(testkit.Context(t), target, str("sync")); err != nil { // after the Watch
		t.Fatal(err)
	}
	a.r.TerminateEndpoint(b.r.Address(), nil)
	if m := terminatedOf(w.got.WaitLen(t, 1)); len(m) != 1 || m[0].Reason != actor.ReasonAddressTerminated {
		t.Fatalf("the watcher received %v, want AddressTerminated", w.got.Snapshot())
	}
	// b's stream to a ended with a's endpoint: b reaches a again first,
	// lest the Terminated be lost with it.
	testkit.Eventually(t, "b to reach a", func() bool {
		ctx, cancel := context.WithTimeout(testkit.Context(t), time.Second)
		defer cancel()
		_, err := b.sys.Request(ctx, echoOnA, str("hello"))
		return err == nil
	})
	if err := b.sys.StopAndWait(testkit.Context(t), parent); err != nil {
		t.Fatal(err)
	}
	// The target's Terminated went before this request, and its answer
	// after.
	if _, err := b.sys.Request(testkit.Context(t), echoOnA, str("sync")); err != nil {
		t.Fatal(err)
	}
	if got := w.got.Snapshot(); len(got) != 1 {
		t.Fatalf("the watcher received %v for its one watch, want one Terminated", got)
	}
}
