package remote

import (
	"context"
	"errors"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

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

// A Watch sent once the restart was found reaches the new process, like
// any Watch, and nobody answers it early.
func TestAWatchSentAfterARestartReachesTheNewProcess(t *testing.T) {
	a, named, _, start := restartingPeer(t)
	second, target := start()
	testkit.Eventually(t, "the restart to be found", func() bool {
		return a.logs.Contains("peer restarted", "peer="+named.Address)
	})
	w, watcher := addProbe(t, a.sys, "watcher")
	a.sys.SendSystemMessage(named, &actor.Watch{Watcher: watcher})
	syncWith(t, a, second.r.Address())
	got := target.got.Snapshot()
	if len(got) != 1 {
		t.Fatalf("the new process's target received %v, want the Watch", got)
	}
	if m, ok := got[0].(*actor.Watch); !ok || !m.GetWatcher().Equal(watcher) {
		t.Fatalf("the new process's target received %v, want a Watch by %v", got[0], watcher)
	}
	if got := w.got.Snapshot(); len(got) > 0 {
		t.Fatalf("the watcher received %v", got)
	}
}

// cutStreams ends every stream between the nodes, as a network failure
// would: their endpoints reconnect to the same process. Each stream is
// one the other node opened, whichever endpoint writes on it.
func cutStreams(nodes ...*node) {
	for _, n := range nodes {
		n.r.mu.Lock()
		ins := make([]*inbound, 0, len(n.r.inbound))
		for in := range n.r.inbound {
			ins = append(ins, in)
		}
		n.r.mu.Unlock()
		for _, in := range ins {
			in.abort()
		}
	}
}

// reconnectingPair starts a, which reconnects to a lost peer for
// testkit.Timeout before it gives up, and b; each has an "echo" (for
// syncWith and terminatedFrom), and b an echo of each of names too.
func reconnectingPair(t *testing.T, names ...string) (a, b *node) {
	t.Helper()
	cfg := fastConfig()
	cfg.ReconnectTimeout = testkit.Timeout
	a, b = startNode(t, cfg), startNode(t, fastConfig())
	spawn := func(sys *actor.System, name string) {
		if _, err := sys.SpawnNamed(actor.PropsFromFunc(echo), name); err != nil {
			t.Fatal(err)
		}
	}
	spawn(a.sys, "echo")
	for _, name := range append([]string{"echo"}, names...) {
		spawn(b.sys, name)
	}
	return a, b
}

// reconnect cuts the streams between a and b and waits until a's endpoint
// has connected to b again.
func reconnect(t *testing.T, a, b *node) {
	t.Helper()
	n := a.logs.Count("remote: reconnected")
	cutStreams(a, b)
	testkit.Eventually(t, "a to reconnect to b", func() bool { return a.logs.Count("remote: reconnected") > n })
}

// terminatedFrom waits until the probe w on a has n messages, then returns
// its Terminated messages once everything b sent a before has arrived (a
// needs an "echo").
func terminatedFrom(t *testing.T, w *probe, n int, a, b *node) []*actor.Terminated {
	t.Helper()
	w.got.WaitLen(t, n)
	// Anything b sent a before this request reached a before its answer.
	if _, err := b.sys.Request(testkit.Context(t), actor.NewPID(a.r.Address(), "echo"), str("sync")); err != nil {
		t.Fatal(err)
	}
	return terminatedOf(w.got.Snapshot())
}

// Watching the same remote actor twice, or watching, unwatching and
// watching again, with the connection lost and made again to the same
// process in between, ends in one Terminated when the actor stops, and
// leaves no watch behind.
func TestWatchesAcrossAReconnectToTheSameProcessEndOnce(t *testing.T) {
	a, b := reconnectingPair(t, "twice", "again")
	twice, again := actor.NewPID(b.r.Address(), "twice"), actor.NewPID(b.r.Address(), "again")
	w, watcher := addProbe(t, a.sys, "watcher")
	reconnect := func() { reconnect(t, a, b) }

	a.sys.SendSystemMessage(twice, &actor.Watch{Watcher: watcher})
	a.sys.SendSystemMessage(again, &actor.Watch{Watcher: watcher})
	syncWith(t, a, b.r.Address())
	reconnect()
	a.sys.SendSystemMessage(twice, &actor.Watch{Watcher: watcher})
	a.sys.SendSystemMessage(again, &actor.Unwatch{Watcher: watcher})
	syncWith(t, a, b.r.Address())
	reconnect()
	a.sys.SendSystemMessage(again, &actor.Watch{Watcher: watcher})
	syncWith(t, a, b.r.Address())

	for _, pid := range []*actor.PID{twice, again} {
		if err := b.sys.StopAndWait(testkit.Context(t), pid); err != nil {
			t.Fatal(err)
		}
	}
	got := terminatedFrom(t, w, 2, a, b)
	if len(got) != 2 || len(w.got.Snapshot()) != 2 {
		t.Fatalf("the watcher received %v, want one Terminated for each of twice and again", w.got.Snapshot())
	}
	for _, m := range got {
		if m.Reason != actor.ReasonStopped || (!m.Who.Equal(twice) && !m.Who.Equal(again)) || (m.Who.Equal(got[0].Who) && m != got[0]) {
			t.Fatalf("the watcher received %v, want one Terminated (stopped) for each of twice and again", got)
		}
	}
	p := a.r.existingPeer(b.r.Address())
	p.mu.Lock()
	left := len(p.watches)
	p.mu.Unlock()
	if left > 0 {
		t.Fatalf("%d watches of b's actors left on a after their end", left)
	}
	if n := watchedBy(b.r, a.r.Address()); n > 0 {
		t.Fatalf("b keeps %d watches by a after their end", n)
	}
}

// An answer to a future of a process that restarted does not reach a
// future of the new process, which makes ids of its own: it is a dead
// letter there, and the new process's future gets its own answer.
func TestAnAnswerForAFutureOfARestartedProcessIsADeadLetterThere(t *testing.T) {
	addr := freePort(t)
	cfg := fastConfig()
	cfg.BindAddress = addr
	b := startNode(t, fastConfig())
	// holder keeps the requests it gets, and answers them when told, each
	// with the text of its request.
	type request struct {
		from *actor.PID
		text string
	}
	var asked testkit.Recorder[request]
	holder, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			if c.Sender() == nil { // from the test: answer every requester, in turn
				for _, r := range asked.Snapshot() {
					c.Send(r.from, str("answer to "+r.text))
				}
				return
			}
			asked.Add(request{c.Sender(), m.GetValue()})
		}
	}), "holder")
	if err != nil {
		t.Fatal(err)
	}
	holder = actor.NewPID(b.r.Address(), holder.Id)

	first := startNode(t, cfg)
	old := first.sys.RequestFuture(holder, str("first"), time.Hour)
	asked.WaitLen(t, 1)
	first.r.Close()
	if _, err := first.sys.Request(testkit.Context(t), holder, str("late")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("request after Close: %v", err)
	}

	second := startNode(t, cfg)
	dl := second.deadLetters(t)
	fresh := second.sys.RequestFuture(holder, str("second"), time.Hour)
	asked.WaitLen(t, 2)
	b.sys.Send(holder, str("answer")) // the old future's answer goes first
	reply, err := fresh.Await(testkit.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := "answer to second"; reply.(*wrapperspb.StringValue).GetValue() != want {
		t.Fatalf("the new process's future got %q, want %q", reply.(*wrapperspb.StringValue).GetValue(), want)
	}
	// The old answer went before, on the same stream.
	found := false
	for _, e := range dl.Snapshot() {
		if e.PID.GetId() == old.PID().Id && errors.Is(e.Reason, actor.ErrDeadLetter) {
			found = true
		}
	}
	if !found {
		t.Fatalf("no dead letter on the new process for the answer to %v: %v", old.PID(), dl.Snapshot())
	}
}

// When the process that watched a local actor restarts at its address,
// the old process's watches go with it: the actor's end is not reported to
// the new process, whose actor of the same name never watched it, whether
// the actor ends after the restart was found (its watches are dropped) or
// before, its Terminated queued for the old process (it is not sent).
func TestWatchesByAProcessThatRestartedAreDropped(t *testing.T) {
	for _, queued := range []bool{false, true} {
		addr := freePort(t)
		cfg := fastConfig()
		cfg.BindAddress = addr
		bcfg := fastConfig()
		bcfg.ReconnectTimeout = testkit.Timeout
		b := startNode(t, bcfg)
		target, parent := spawnUnder(t, b.sys, "target")
		echoOnB := actor.NewPID(b.r.Address(), "echo")
		if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
			t.Fatal(err)
		}

		first := startNode(t, cfg)
		_, watcher := addProbe(t, first.sys, "watcher")
		first.sys.SendSystemMessage(target, &actor.Watch{Watcher: watcher})
		if _, err := first.sys.Request(testkit.Context(t), echoOnB, str("sync")); err != nil {
			t.Fatal(err)
		}
		first.r.Close()
		if queued {
			// b's endpoint, which answered on first's stream, reconnects.
			testkit.Eventually(t, "b's connection to the first process to be lost", func() bool {
				return b.logs.Contains("connection lost", "peer="+addr)
			})
			if err := b.sys.StopAndWait(testkit.Context(t), parent); err != nil {
				t.Fatal(err)
			}
		}

		var w *probe
		startNodeAfter(t, cfg, func(sys *actor.System) {
			w, _ = addProbe(t, sys, "watcher")
			if _, err := sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
				t.Fatal(err)
			}
		})
		// b meets the new process.
		testkit.Eventually(t, "b to reach the new process", func() bool {
			ctx, cancel := context.WithTimeout(testkit.Context(t), time.Second)
			defer cancel()
			_, err := b.sys.Request(ctx, actor.NewPID(addr, "echo"), str("hello"))
			return err == nil
		})
		if !queued {
			if err := b.sys.StopAndWait(testkit.Context(t), parent); err != nil {
				t.Fatal(err)
			}
		}
		// Anything b sent the new process before this request reached it
		// before the answer.
		if _, err := b.sys.Request(testkit.Context(t), actor.NewPID(addr, "echo"), str("sync")); err != nil {
			t.Fatal(err)
		}
		if got := w.got.Snapshot(); len(got) > 0 {
			t.Fatalf("queued %v: the new process's watcher, which watched nothing, received %v", queued, got)
		}
		if n := watchedBy(b.r, addr); n > 0 {
			t.Fatalf("queued %v: b keeps %d watches by the peer at %s", queued, n, addr)
		}
	}
}

// spawnUnder spawns on sys an echo named name under a parent of its own,
// and returns both. StopAndWait of the parent returns once the child has
// sent every watcher its Terminated (it tells its parent last): what the
// system sends after that goes after those.
func spawnUnder(t *testing.T, sys *actor.System, name string) (child, parent *actor.PID) {
	t.Helper()
	made := make(chan *actor.PID, 1)
	parent = sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			pid, err := c.SpawnNamed(actor.PropsFromFunc(echo), name)
			if err != nil {
				t.Error(err)
			}
			made <- pid
		}
	}))
	child = <-made
	if child == nil {
		t.FailNow()
	}
	return child, parent
}

// watchedBy counts the local actors r knows the peer at address watches.
func watchedBy(r *Remote, address string) int {
	p := r.existingPeer(address)
	if p == nil {
		return 0
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.watchedBy)
}

// A Watch whose frame was lost with the connection (gRPC took it, the
// connection broke before the peer read it) stays in the watch set, but
// the peer never registered it. After a reconnect to the same process the
// watch holds all the same: the watcher hears of the actor's end once,
// whether the actor ends later or ended while the Watch was lost.
func TestAWatchLostWithTheConnectionHoldsAfterAReconnect(t *testing.T) {
	a, b := reconnectingPair(t, "target", "gone")
	target, gone := actor.NewPID(b.r.Address(), "target"), actor.NewPID(b.r.Address(), "gone")
	syncWith(t, a, b.r.Address())
	w, watcher := addProbe(t, a.sys, "watcher")
	// The Watches were lost: in a's watch set, never sent. (A frame gRPC
	// took is lost only if the connection breaks before the peer reads
	// it, which no test can time.)
	p := a.r.existingPeer(b.r.Address())
	p.addWatch(target.Id, watcher)
	p.addWatch(gone.Id, watcher)
	if err := b.sys.StopAndWait(testkit.Context(t), gone); err != nil {
		t.Fatal(err)
	}
	reconnect(t, a, b)
	syncWith(t, a, b.r.Address())
	if err := b.sys.StopAndWait(testkit.Context(t), target); err != nil {
		t.Fatal(err)
	}
	got := terminatedFrom(t, w, 2, a, b)
	if len(got) != 2 || len(w.got.Snapshot()) != 2 || got[0].Who.Equal(got[1].Who) {
		t.Fatalf("the watcher received %v, want one Terminated for each of gone and target", w.got.Snapshot())
	}
	if n := watchedBy(b.r, a.r.Address()); n > 0 {
		t.Fatalf("b keeps %d watches by a after their end", n)
	}
}

// startProxied starts a node that listens behind a proxy of its own, whose
// address it advertises: every connection dialed to it goes through the
// proxy, which can cut them as a network failure would. The proxy closes
// after the node stops.
func startProxied(t *testing.T, cfg Config) (*node, *testkit.Proxy) {
	t.Helper()
	p, err := testkit.NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	cfg.BindAddress, cfg.AdvertisedAddress = "127.0.0.1:0", p.Addr()
	n := startNode(t, cfg)
	p.Forward(n.r.ListenAddress())
	return n, p
}

// A connection that breaks without a goodbye (reset by a proxy, while
// both processes run) and is made again to the same process is reported
// with ConnectionLost, since what it carried may be lost; the end of a
// connection by the peer's goodbye is not.
func TestAConnectionLostWithoutAGoodbyeIsPublished(t *testing.T) {
	cfg := fastConfig()
	cfg.ReconnectTimeout = testkit.Timeout
	a, pa := startProxied(t, cfg)
	b, pb := startProxied(t, fastConfig())
	for _, n := range []*node{a, b} {
		if _, err := n.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
			t.Fatal(err)
		}
	}
	var lost testkit.Recorder[*ConnectionLost]
	var ended testkit.Recorder[*EndpointTerminated]
	subs := []*actor.Subscription{
		actor.Subscribe(a.sys.EventStream(), func(e *ConnectionLost) { lost.Add(e) }),
		actor.Subscribe(a.sys.EventStream(), func(e *EndpointTerminated) { ended.Add(e) }),
	}
	defer func() {
		for _, s := range subs {
			s.Unsubscribe()
		}
	}()
	syncWith(t, a, b.r.Address())
	// Every stream between a and b goes through the proxy of the one
	// dialed, whichever endpoint writes on it.
	if n := pa.Cut() + pb.Cut(); n == 0 {
		t.Fatal("no connection to cut")
	}
	if e := lost.WaitLen(t, 1)[0]; e.Address != b.r.Address() || e.Reason == nil {
		t.Fatalf("ConnectionLost = %+v, want one for %s with a reason", e, b.r.Address())
	}
	// b answers on the cut connection until it notices the cut, and such
	// an answer would be lost: sync once b's endpoint has left it. It
	// wrote on the stream a dialed, the only one between them, so the
	// next it writes on is one made after the cut.
	testkit.Eventually(t, "b to notice the cut", func() bool {
		return b.logs.Contains("remote: connection lost", "peer="+a.r.Address())
	})
	syncWith(t, a, b.r.Address())
	if got := lost.Snapshot(); len(got) != 1 {
		t.Fatalf("ConnectionLost published %d times for one cut, want once: %v", len(got), got)
	}
	if err := b.r.Shutdown(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	ended.WaitLen(t, 1)
	if got := lost.Snapshot(); len(got) != 1 {
		t.Fatalf("ConnectionLost published %d times, want once (not for the goodbye): %v", len(got), got)
	}
}
