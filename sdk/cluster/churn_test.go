package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/cluster/clustertest"
	"github.com/troupehq/troupe/sdk/cluster/internal/clusterpb"
	"github.com/troupehq/troupe/sdk/internal/testkit"
	"github.com/troupehq/troupe/sdk/remote"
)

// load calls random identities from callers until stopped, counting
// successes and failures. Every third call asks the grain who it is: an
// answer from another grain is a failure.
type load struct {
	ok, failed atomic.Int64
	errs       chan error
	stop       chan struct{}
	stopOnce   sync.Once
	wg         sync.WaitGroup
}

// callTimeout bounds each call of the load; retries happen inside it.
const callTimeout = 10 * time.Second

// startLoad starts workers goroutines that call identities random
// counters (seeded) through callers, in turn. The load stops when the test
// ends, if finish has not stopped it: a test that failed half-way must not
// leave it calling for the rest of the run.
func startLoad(t *testing.T, callers []*cluster.Cluster, identities, workers int, seed uint64) *load {
	l := &load{errs: make(chan error, 16), stop: make(chan struct{})}
	t.Cleanup(l.halt) // before the fixture's cleanup, registered earlier
	for w := range workers {
		c := callers[w%len(callers)]
		rng := rand.New(rand.NewPCG(seed, uint64(w)))
		l.wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-l.stop:
					return
				default:
				}
				id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprintf("load-%d", rng.IntN(identities))}
				msg := "inc"
				if i%3 == 2 {
					msg = "who"
				}
				ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
				res, err := c.Request(ctx, id, wrapperspb.String(msg))
				cancel()
				if who, ok := res.(*wrapperspb.StringValue); err == nil && msg == "who" && (!ok || who.GetValue() != id.ID) {
					err = fmt.Errorf("answered by another grain: %v", res)
				}
				if err != nil {
					l.failed.Add(1)
					select {
					case l.errs <- fmt.Errorf("%v: %w", id, err):
					default:
					}
					continue
				}
				l.ok.Add(1)
			}
		})
	}
	return l
}

// progress waits until n more calls have succeeded.
func (l *load) progress(t *testing.T, n int64) {
	t.Helper()
	target := l.ok.Load() + n
	testkit.Eventually(t, fmt.Sprintf("%d more successful calls", n), func() bool { return l.ok.Load() >= target })
}

// halt stops the load and waits for its callers.
func (l *load) halt() {
	l.stopOnce.Do(func() { close(l.stop) })
	l.wg.Wait()
}

func (l *load) finish(t *testing.T) {
	t.Helper()
	l.halt()
	if n := l.failed.Load(); n > 0 {
		close(l.errs)
		var first []error
		for err := range l.errs {
			first = append(first, err)
		}
		t.Fatalf("%d of %d calls failed; first errors: %v", n, n+l.ok.Load(), first)
	}
	if l.ok.Load() == 0 {
		t.Fatal("no call succeeded")
	}
}

func noDuplicates(t *testing.T, l *ledger) {
	t.Helper()
	// Steady state: while a topology settles an old activation may still be
	// stopping as its successor starts; once settled, one per identity.
	testkit.Await(t, testkit.Timeout, "one activation per identity", func() string {
		if dups := l.duplicates(); len(dups) > 0 {
			return fmt.Sprint(dups)
		}
		return ""
	})
}

// onRunningMembersOnly checks that every live activation is on a running
// member of f: none is counted on a member that left.
func onRunningMembersOnly(t *testing.T, f *clustertest.Fixture, l *ledger) {
	t.Helper()
	running := make(map[string]bool)
	for _, n := range f.Running() {
		running[n.Remote.Address()] = true
	}
	if stray := l.liveWhere(func(address string) bool { return !running[address] }); len(stray) > 0 {
		t.Fatalf("%d activations live on members that left, the first: %v", len(stray), stray[:min(len(stray), 5)])
	}
}

// leave makes n leave the cluster gracefully, checking that its
// cluster.Shutdown passivated every activation n hosted (before the
// fixture shuts n's actor system down, which would stop them anyway).
func leave(t *testing.T, f *clustertest.Fixture, l *ledger, n *clustertest.Node) {
	t.Helper()
	if err := n.Cluster.Shutdown(testkit.Context(t)); err != nil {
		t.Fatalf("%s: cluster shutdown: %v", n.Name, err)
	}
	if live := l.liveAt(n.Remote.Address()); len(live) > 0 {
		t.Fatalf("%s left with %d live activations, the first: %v", n.Name, len(live), live[:min(len(live), 5)])
	}
	f.Stop(n)
}

func TestGracefulLeaveUnderLoadLosesNoCall(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	client := f.AddClient()
	nodes := f.Members()
	work := startLoad(t, []*cluster.Cluster{client.Cluster, nodes[0].Cluster}, 200, 8, 1)
	work.progress(t, 500)
	leaver := nodes[2]
	if len(l.liveAt(leaver.Remote.Address())) == 0 {
		t.Fatal("the leaver hosts no activation: its leave would test nothing")
	}
	leave(t, f, l, leaver)
	f.WaitConverged()
	work.progress(t, 500)
	work.finish(t)
	noDuplicates(t, l)
	onRunningMembersOnly(t, f, l)
}

func TestKilledMemberGrainsReactivateElsewhere(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	nodes := f.Members()
	caller := nodes[0].Cluster
	victim := nodes[2]
	// Activations on the victim.
	var onVictim []cluster.ClusterIdentity
	for i := 0; len(onVictim) < 10 && i < 1000; i++ {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("k", i)}
		pid, err := caller.Get(testkit.Context(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if pid.Address == victim.Remote.Address() {
			onVictim = append(onVictim, id)
		}
	}
	if len(onVictim) == 0 {
		t.Fatal("no activation landed on the victim")
	}
	f.Kill(victim)
	for _, id := range onVictim {
		if got := ask(t, caller, id.ID); got != 1 {
			t.Fatalf("%v after the kill = %d, want 1 (a new activation)", id, got)
		}
		pid, err := caller.Get(testkit.Context(t), id)
		if err != nil || pid.Address == victim.Remote.Address() {
			t.Fatalf("%v still at the dead member: %v (%v)", id, pid, err)
		}
	}
	noDuplicates(t, l)
}

func TestJoinsAndLeavesUnderLoadKeepOneActivationPerIdentity(t *testing.T) {
	l := newLedger()
	metrics := &countingMetrics{}
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}, Cluster: cluster.Config{Metrics: metrics}})
	client := f.AddClient()
	anchor := f.Members()[0]
	work := startLoad(t, []*cluster.Cluster{client.Cluster, anchor.Cluster}, 300, 8, 2)
	rng := rand.New(rand.NewPCG(3, 4))
	for step := range 8 {
		work.progress(t, 300)
		var others []*clustertest.Node
		for _, n := range f.Running() {
			if n != anchor && n != client {
				others = append(others, n)
			}
		}
		switch {
		case len(others) < 2 || step%3 == 0:
			f.AddMember()
		case step%3 == 1:
			leave(t, f, l, others[rng.IntN(len(others))])
		default:
			f.Kill(others[rng.IntN(len(others))])
		}
		f.WaitConverged()
		onRunningMembersOnly(t, f, l)
		work.progress(t, 300)
		noDuplicates(t, l)
	}
	work.finish(t)
	noDuplicates(t, l)
	onRunningMembersOnly(t, f, l)
	if metrics.handovers.Load() == 0 {
		t.Fatal("no handover reported")
	}
}

// Members that join and leave at once (crash at once, as in a crash loop)
// while one member, paused, sees none of it, under load: every call
// succeeds, no handover waits out its timeout, and each identity keeps one
// activation.
func TestFlapsUnseenBySomeMembersUnderLoadKeepOneActivationPerIdentity(t *testing.T) {
	l := newLedger()
	metrics := &handoverMetrics{}
	f := clustertest.New(t, 3, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 0)},
		Cluster: cluster.Config{Metrics: metrics, HandoverTimeout: time.Hour},
	})
	client := f.AddClient()
	members := f.Members()[:3]
	work := startLoad(t, []*cluster.Cluster{client.Cluster, members[0].Cluster}, 300, 8, 5)
	rng := rand.New(rand.NewPCG(6, 7))
	for range 6 {
		work.progress(t, 300)
		paused := members[rng.IntN(len(members))]
		resume := f.Registry.Pause(paused.Cluster.Self().ID)
		flapper := f.AddMember()
		seen := func(in bool) func() bool {
			return func() bool {
				for _, n := range members {
					if _, ok := n.Cluster.Topology().Member(flapper.Cluster.Self().ID); n != paused && ok != in {
						return false
					}
				}
				return true
			}
		}
		testkit.Eventually(t, "the other members to see the newcomer", seen(true))
		f.Kill(flapper)
		testkit.Eventually(t, "the other members to see it go", seen(false))
		resume()
		f.WaitConverged()
		work.progress(t, 300)
		noDuplicates(t, l)
	}
	work.finish(t)
	noDuplicates(t, l)
	if n := metrics.timedOut.Load(); n > 0 {
		t.Fatalf("%d handovers waited out HandoverTimeout", n)
	}
}

type handoverMetrics struct {
	cluster.NopMetrics
	completed, timedOut atomic.Int64
}

func (m *handoverMetrics) HandoverCompleted(_ time.Duration, timedOut bool) {
	if timedOut {
		m.timedOut.Add(1)
		return
	}
	m.completed.Add(1)
}

func TestHandoverTimeoutLetsOwnersAnswer(t *testing.T) {
	l := newLedger()
	metrics := &handoverMetrics{}
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 0)},
		Cluster: cluster.Config{Metrics: metrics, HandoverTimeout: 100 * time.Millisecond},
	})
	caller := f.Members()[0].Cluster
	// A member that is registered but never runs: it never reports its
	// handover, so the others must stop waiting for it.
	ghost := f.Registry.Membership()
	if err := ghost.Join(context.Background(), cluster.Member{ID: "ghost", Address: "127.0.0.1:1", Kinds: []string{"counter"}}, false, func([]cluster.Member) {}); err != nil {
		t.Fatal(err)
	}
	defer ghost.Leave(context.Background())
	testkit.Eventually(t, "the ghost in every topology", func() bool {
		for _, n := range f.Members() {
			if _, ok := n.Cluster.Topology().Member("ghost"); !ok {
				return false
			}
		}
		return true
	})
	testkit.Eventually(t, "the handover to time out on both members", func() bool { return metrics.timedOut.Load() >= 2 })
	// Identities the real members own are served (those the ghost owns
	// cannot be, and their calls would run out of time).
	served := 0
	for i := 0; served < 5 && i < 200; i++ {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("g", i)}
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		_, err := caller.Request(ctx, id, wrapperspb.String("inc"))
		cancel()
		if err == nil {
			served++
		}
	}
	if served < 5 {
		t.Fatalf("only %d identities served after the handover timed out", served)
	}
}

// stallPlacement blocks an owner's identity actor while it places an
// identity whose id starts with "stall", until release is closed: a member
// slow to take in topology changes.
type stallPlacement struct {
	entered chan struct{}
	release chan struct{}
}

func (p stallPlacement) Place(id cluster.ClusterIdentity, owner string, _ []cluster.Member) string {
	if strings.HasPrefix(id.ID, "stall") {
		p.entered <- struct{}{}
		<-p.release
	}
	return owner
}

// Two members join in quick succession while the old members are slow: the
// first new one adopts both topologies before the old hosts report their
// activations. It must not start a second activation of an identity it
// owns in both.
func TestANewOwnerWaitsForReportsAcrossTwoQuickJoins(t *testing.T) {
	s := startStallable(t)
	f, t1 := s.f, s.t1
	s.stall(t, t1.Members[0].ID, t1.Members[1].ID)
	a := f.AddMember()
	t2 := a.Cluster.Topology()
	d := f.AddMember()
	testkit.Eventually(t, "the first new member to see the second", func() bool {
		_, ok := a.Cluster.Topology().Member(d.Cluster.Self().ID)
		return ok
	})
	t3 := a.Cluster.Topology()
	var moved []cluster.ClusterIdentity
	for i := range stallableGrains {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("x", i)}
		if me := a.Cluster.Self().ID; cluster.OwnerOf(t2, id) == me && cluster.OwnerOf(t3, id) == me {
			moved = append(moved, id)
		}
	}
	if len(moved) == 0 {
		t.Fatal("no identity moved to the first new member in both topologies")
	}
	// Calls to those while their hosts are stalled: the new owner must
	// hold them until the hosts report.
	s.callsWait(t, a.Cluster, moved)
}

// stallable is a cluster of two members hosting counters whose placement
// is stallPlacement, with a HandoverTimeout of an hour, in which the
// first member activated the grains x0…x{stallableGrains-1}.
type stallable struct {
	f       *clustertest.Fixture
	l       *ledger
	t1      cluster.Topology // the two members'
	pl      stallPlacement
	release func() // ends every stall (once)
}

const stallableGrains = 200

func startStallable(t *testing.T) *stallable {
	t.Helper()
	s := &stallable{l: newLedger(), pl: stallPlacement{entered: make(chan struct{}, 2), release: make(chan struct{})}}
	kind := counterKind(s.l, 0)
	kind.Placement = s.pl
	s.f = clustertest.New(t, 2, clustertest.Options{Kinds: []cluster.Kind{kind}, Cluster: cluster.Config{HandoverTimeout: time.Hour}})
	first := s.f.Members()[0]
	s.t1 = first.Cluster.Topology()
	for i := range stallableGrains {
		ask(t, first.Cluster, fmt.Sprint("x", i))
	}
	s.release = sync.OnceFunc(func() { close(s.pl.release) })
	t.Cleanup(s.release)
	return s
}

// stall blocks the identity actors of members (IDs, of the first
// topology) in a placement until release: members slow to take in
// topology changes, which report nothing of the next ones.
func (s *stallable) stall(t *testing.T, members ...string) {
	t.Helper()
	todo := map[string]bool{}
	for _, m := range members {
		todo[m] = true
	}
	caller := s.f.Members()[0].Cluster
	for i := 0; len(todo) > 0; i++ {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("stall", i)}
		if owner := cluster.OwnerOf(s.t1, id); todo[owner] {
			delete(todo, owner)
			go func() { _, _ = caller.Request(testkit.Context(t), id, wrapperspb.String("inc")) }()
			<-s.pl.entered
		}
	}
}

// callsWait calls each of moved from caller, whose cache knows none of
// them, while the hosts of their activations are stalled: their owner
// must hold the calls until the hosts report. The callers give up early
// (the owner still answers them later). Then it releases the hosts, waits
// for the members to agree, calls each again, and checks that every
// identity kept one activation.
func (s *stallable) callsWait(t *testing.T, caller *cluster.Cluster, moved []cluster.ClusterIdentity) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	var wg sync.WaitGroup
	for _, id := range moved {
		wg.Go(func() { _, _ = caller.Request(ctx, id, wrapperspb.String("inc")) })
	}
	wg.Wait()
	cancel()
	s.release()
	s.f.WaitConverged()
	for _, id := range moved {
		if _, err := caller.Request(testkit.Context(t), id, wrapperspb.String("inc")); err != nil {
			t.Fatal(err)
		}
	}
	if dups := s.l.duplicates(); len(dups) > 0 {
		t.Fatalf("%d identities have two activations: %v", len(dups), dups)
	}
}

// slowHostPlacement places the first activation of an identity whose id
// starts with "dup" on host, and later ones on the owner (as a placement
// by load or round robin may choose another member each time); it blocks
// an owner's identity actor as stallPlacement does.
type slowHostPlacement struct {
	stallPlacement
	host   string
	mu     sync.Mutex
	placed int
}

func (p *slowHostPlacement) Place(id cluster.ClusterIdentity, owner string, candidates []cluster.Member) string {
	if strings.HasPrefix(id.ID, "dup") {
		p.mu.Lock()
		defer p.mu.Unlock()
		if p.placed++; p.placed == 1 {
			return p.host
		}
	}
	return p.stallPlacement.Place(id, owner, candidates)
}

// An owner whose placement request a busy host does not answer within
// PlacementTimeout makes its callers retry; the host may still start the
// activation when it gets to the request. Asking the placement again (it
// may choose another member) would start a second activation.
func TestAPlacementThatTimedOutIsNotMadeAgainElsewhere(t *testing.T) {
	l, metrics := newLedger(), &countingMetrics{}
	pl := &slowHostPlacement{stallPlacement: stallPlacement{entered: make(chan struct{}, 1), release: make(chan struct{})}}
	kind := counterKind(l, 0)
	kind.Placement = pl
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{kind},
		Cluster: cluster.Config{Metrics: metrics, PlacementTimeout: 100 * time.Millisecond},
	})
	owner, host := f.Members()[0], f.Members()[1]
	pl.host = host.Cluster.Self().ID
	release := sync.OnceFunc(func() { close(pl.release) })
	defer release()
	// The host's identity actor is busy: it places an identity it owns.
	stall := ownedBy(t, host, "counter", "stall")
	stalled := make(chan error, 1)
	go func() {
		_, err := host.Cluster.Request(testkit.Context(t), stall, wrapperspb.String("inc"))
		stalled <- err
	}()
	<-pl.entered
	id := ownedBy(t, owner, "counter", "dup")
	called := make(chan error, 1)
	go func() {
		_, err := owner.Cluster.Request(testkit.Context(t), id, wrapperspb.String("inc"))
		called <- err
	}()
	testkit.Eventually(t, "the placement on the busy host to time out", func() bool { return metrics.retries.Load() > 0 })
	release()
	for _, done := range []chan error{stalled, called} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	// The host has taken the placement requests queued before this one.
	if _, err := host.Cluster.Get(testkit.Context(t), ownedBy(t, host, "counter", "barrier")); err != nil {
		t.Fatal(err)
	}
	if n := metrics.activated.Load(); n != 3 {
		t.Fatalf("%d activations of 3 identities (%v twice?)", n, id)
	}
}

// A grain whose bounded mailbox drops what does not fit (OverflowDrop) and
// is full when its member shuts down drops the poison pill that passivates
// it too. Shutdown still passivates it once it has room, within its
// context, instead of waiting for the context to end.
func TestShutdownPassivatesAGrainWhoseFullMailboxDropsThePoisonPill(t *testing.T) {
	gate := make(chan struct{})
	entered := make(chan struct{}, 1)
	kind := cluster.Kind{Name: "counter", Props: actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); ok {
			select {
			case entered <- struct{}{}:
			default:
			}
			<-gate
		}
	}, actor.WithMailbox(actor.MailboxConfig{Capacity: 2, Policy: actor.OverflowDrop}))}
	f := clustertest.New(t, 2, clustertest.Options{Kinds: []cluster.Kind{kind}})
	n := f.Members()[0]
	id := ownedBy(t, n, "counter", "busy")
	pid, err := f.Members()[1].Cluster.Get(testkit.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	poisonDropped := make(chan struct{}, 1)
	sub := actor.Subscribe(n.System.EventStream(), func(e *actor.DeadLetterEvent) {
		if _, ok := e.Message.(*actor.PoisonPill); ok && e.PID.Equal(pid) {
			select {
			case poisonDropped <- struct{}{}:
			default:
			}
		}
	})
	defer sub.Unsubscribe()
	n.System.Send(pid, wrapperspb.String("inc"))
	<-entered
	for range 4 { // fill the mailbox
		n.System.Send(pid, wrapperspb.String("inc"))
	}
	done := make(chan error, 1)
	go func() { done <- n.Cluster.Shutdown(testkit.Context(t)) }()
	<-poisonDropped
	close(gate)
	if err := <-done; err != nil {
		t.Fatalf("shutdown: %v", err)
	}
}

// expulsions records the Expelled events of node n.
func expulsions(n *clustertest.Node) *testkit.Recorder[cluster.Expelled] {
	var got testkit.Recorder[cluster.Expelled]
	actor.Subscribe(n.System.EventStream(), func(e cluster.Expelled) { got.Add(e) })
	return &got
}

// A member that sees the membership drop it (a failure detector declared
// it dead) closes itself: the others start its grains again elsewhere, so
// it must not go on hosting them.
func TestAMemberTheMembershipDropsClosesItself(t *testing.T) {
	f, _, _ := counterCluster(t, 2)
	dropped := f.Members()[1]
	got := expulsions(dropped)
	f.Registry.Kill(dropped.Cluster.Self().ID)
	if e := got.WaitLen(t, 1)[0]; e.Member.ID != dropped.Cluster.Self().ID {
		t.Fatalf("Expelled names %s, want this member %s", e.Member.ID, dropped.Cluster.Self().ID)
	}
	testkit.Eventually(t, "the expelled member to close", func() bool {
		_, err := dropped.Cluster.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: "after"}, wrapperspb.String("inc"))
		return errors.Is(err, cluster.ErrNotStarted)
	})
}

// A member that the membership drops and lists again under the same ID
// while it is paused never sees itself dropped. The members that saw it
// leave refuse it, and one that joins later would take it in: they would
// never agree on a topology, and every call of the newcomer would fail.
// The others tell it to go instead, and the cluster agrees again.
func TestAMemberListedAgainAfterLeavingIsExpelled(t *testing.T) {
	f, _, _ := counterCluster(t, 2)
	first, flapped := f.Members()[0], f.Members()[1]
	self := flapped.Cluster.Self()
	got := expulsions(flapped)
	resume := f.Registry.Pause(self.ID)
	f.Registry.Kill(self.ID)
	testkit.Eventually(t, "the first member to see it leave", func() bool {
		_, in := first.Cluster.Topology().Member(self.ID)
		return !in
	})
	f.Registry.Relist(self)
	resume() // it sees only the latest set, which has it
	if e := got.WaitLen(t, 1)[0]; e.Member.ID != self.ID {
		t.Fatalf("Expelled names %s, want %s", e.Member.ID, self.ID)
	}
	late := f.AddMember()
	testkit.Eventually(t, "the newcomer and the first member to agree", func() bool {
		return late.Cluster.Topology().Hash == first.Cluster.Topology().Hash
	})
	if _, in := late.Cluster.Topology().Member(self.ID); in {
		t.Fatalf("the newcomer still lists the expelled member")
	}
	for i := range 20 {
		ask(t, late.Cluster, fmt.Sprint("split", i))
	}
}

// A member that joins and leaves at once can go unseen by some members (a
// membership merges changes): here by the host of every grain. The owners
// that saw it dropped the grains it owned for a moment, and when they own
// them again the host, which saw no change, has no delta to send them. The
// owners' completions, which follow another topology than the host's, get
// them a full report from it instead: every call reaches the grain's one
// activation, without waiting out HandoverTimeout (before, the owners
// waited for a completion the host never sent, then started second
// activations).
func TestAMemberThatJoinsAndLeavesUnseenByTheHostLeavesOneActivationEach(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 1, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 0)},
		Cluster: cluster.Config{HandoverTimeout: time.Hour},
	})
	host := f.Members()[0]
	const grains = 100
	for i := range grains {
		ask(t, host.Cluster, fmt.Sprint("flap", i)) // every grain lives on the host
	}
	a, b := f.AddMember(), f.AddMember()
	f.WaitConverged()
	for i := range grains {
		// The owners have the host's reports (and, on the same stream
		// right after them, its completion) before the newcomer comes.
		ask(t, a.Cluster, fmt.Sprint("flap", i))
		ask(t, b.Cluster, fmt.Sprint("flap", i))
	}
	sees := func(n int) func() bool {
		return func() bool {
			return len(a.Cluster.Topology().Members) == n && len(b.Cluster.Topology().Members) == n
		}
	}
	resume := f.Registry.Pause(host.Cluster.Self().ID)
	flapper := f.AddMember()
	testkit.Eventually(t, "the owners to see the newcomer", sees(4))
	f.Kill(flapper) // a member that crashed at once, as one in a crash loop does
	testkit.Eventually(t, "the owners to see it go", sees(3))
	resume() // the host sees only the latest set: no change
	// A client has no cache: its calls go through the owners.
	client := f.AddClient()
	f.WaitConverged()
	for i := range grains {
		if got := ask(t, client.Cluster, fmt.Sprint("flap", i)); got != 4 {
			t.Fatalf("flap%d counted %d, want 4: a second activation answered", i, got)
		}
	}
	if n := l.activations.Load(); n != grains {
		t.Fatalf("%d activations of %d grains", n, grains)
	}
}

// A handover timeout queued for an earlier topology does not end the
// handover of a later one with the same members (a member joined and left
// in between): identities still in flux would be answered for early.
func TestAStaleHandoverTimeoutDoesNotEndALaterHandover(t *testing.T) {
	metrics := &handoverMetrics{}
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(newLedger(), 0)},
		Cluster: cluster.Config{Metrics: metrics, HandoverTimeout: time.Hour},
	})
	m := f.Members()[0].Cluster
	// A member that never reports keeps every handover open.
	ghost := f.Registry.Membership()
	if err := ghost.Join(context.Background(), cluster.Member{ID: "ghost", Address: "127.0.0.1:1", Kinds: []string{"counter"}}, false, func([]cluster.Member) {}); err != nil {
		t.Fatal(err)
	}
	defer ghost.Leave(context.Background())
	testkit.Eventually(t, "the ghost in the topology", func() bool { _, ok := m.Topology().Member("ghost"); return ok })
	first := m.Topology()
	joiner := f.AddMember()
	testkit.Eventually(t, "the joiner in the topology", func() bool {
		_, ok := m.Topology().Member(joiner.Cluster.Self().ID)
		return ok
	})
	f.Stop(joiner)
	testkit.Eventually(t, "the same members again", func() bool {
		now := m.Topology()
		return now.Hash == first.Hash && now.Epoch > first.Epoch
	})
	if err := cluster.TimeOutHandover(testkit.Context(t), m, first.Epoch); err != nil {
		t.Fatal(err)
	}
	if n := metrics.timedOut.Load(); n != 0 {
		t.Fatalf("the earlier topology's timeout ended the handover (%d timed out)", n)
	}
	if err := cluster.TimeOutHandover(testkit.Context(t), m, m.Topology().Epoch); err != nil {
		t.Fatal(err)
	}
	if n := metrics.timedOut.Load(); n != 1 {
		t.Fatalf("the current topology's timeout: %d handovers timed out, want 1", n)
	}
}

// TestAHandoverTooLargeForOneMessageReachesTheNewOwner: a host whose
// report to a new owner is larger than a remote message may be sends it in
// parts; the new owner, which waits for every report (the timeout is an
// hour), must get them all, or it starts a second activation of each grain
// whose entry was lost.
func TestAHandoverTooLargeForOneMessageReachesTheNewOwner(t *testing.T) {
	handoverToAJoiner(t, 2_000, remote.Config{MaxMessageSize: 16 << 10}, nil)
}

// TestALostHandoverReportIsCaughtByTheCompletionAfterIt: the host's report
// to the new owner is lost (here its serialization fails, as a frame lost
// with a broken connection would be), but its completion arrives. The new
// owner must not take it for done.
func TestALostHandoverReportIsCaughtByTheCompletionAfterIt(t *testing.T) {
	lose := &loseFirst{match: func(msg any) bool {
		d, ok := msg.(*clusterpb.HandoverDelta)
		return ok && len(d.GetEntries()) > 0
	}}
	handoverToAJoiner(t, 300, remote.Config{}, func(host *clustertest.Node) {
		if err := host.Remote.Serializers().Register(lose); err != nil {
			t.Fatal(err)
		}
	})
	if !lose.lost.Load() {
		t.Fatal("no report was lost: the test tested nothing")
	}
}

// handoverToAJoiner activates grains counters on the first of two members
// (whose remotes have config rc), lets prepare do what it will with that
// host, adds a member, and calls every grain from it: its cache is empty,
// so each call asks the grain's owner. None may have two activations. The
// handover timeout is an hour: a new owner waits for every report.
func handoverToAJoiner(t *testing.T, grains int, rc remote.Config, prepare func(host *clustertest.Node)) {
	l := newLedger()
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 0)},
		Cluster: cluster.Config{HandoverTimeout: time.Hour},
		Remote:  rc,
	})
	host := f.Members()[0]
	ids := make([]string, grains)
	errs := make([]error, 8)
	var wg sync.WaitGroup
	for w := range errs {
		wg.Go(func() {
			for i := w; i < grains && errs[w] == nil; i += len(errs) {
				ids[i] = fmt.Sprint("g", i)
				_, errs[w] = host.Cluster.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: ids[i]}, wrapperspb.String("inc"))
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	if prepare != nil {
		prepare(host)
	}
	joined := f.AddMember()
	f.WaitConverged()
	moved := 0
	for _, id := range ids {
		if cluster.OwnerOf(joined.Cluster.Topology(), cluster.ClusterIdentity{Kind: "counter", ID: id}) == joined.Cluster.Self().ID {
			moved++
		}
		ask(t, joined.Cluster, id)
	}
	if moved == 0 {
		t.Fatal("no grain moved to the new member")
	}
	if dups := l.duplicates(); len(dups) > 0 {
		t.Fatalf("%d of the %d grains that moved to the new owner have two activations: %v", len(dups), moved, dups[:min(len(dups), 5)])
	}
}

// loseFirst is a serializer that takes the first message match accepts and
// fails to serialize it, so that it is lost, as a frame lost with a broken
// connection would be; it leaves every other message to the serializers
// after it.
type loseFirst struct {
	match func(msg any) bool
	lost  atomic.Bool
}

func (*loseFirst) ID() uint32 { return 99 }

func (s *loseFirst) TypeName(msg any) (string, bool) {
	if !s.match(msg) || !s.lost.CompareAndSwap(false, true) {
		return "", false
	}
	return "lost", true
}

func (*loseFirst) Marshal([]byte, any) ([]byte, error) {
	return nil, errors.New("this message is lost")
}

func (*loseFirst) Unmarshal(string, []byte) (any, error) {
	return nil, errors.New("never sent")
}

// TestACompletionLostWithAConnectionIsSentAgain: a host's completion to a
// member that joined is lost, and the new member, whose handover timeout is
// an hour, holds the calls of the grains it owns until it comes. Once the
// host hears that its connection to the member was lost (here cut by the
// fixture's proxies, both processes running), it completes again.
func TestACompletionLostWithAConnectionIsSentAgain(t *testing.T) {
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(newLedger(), 0)},
		Cluster: cluster.Config{HandoverTimeout: time.Hour},
		Proxied: true,
	})
	host, other := f.Members()[0], f.Members()[1]
	known := map[string]bool{host.Cluster.Self().ID: true, other.Cluster.Self().ID: true}
	lose := &loseFirst{match: func(msg any) bool {
		d, ok := msg.(*clusterpb.HandoverComplete)
		return ok && !known[d.GetReceiverId()]
	}}
	if err := host.Remote.Serializers().Register(lose); err != nil {
		t.Fatal(err)
	}
	joined := f.AddMember()
	f.WaitConverged()
	testkit.Eventually(t, "the host's completion to the new member to be lost", lose.lost.Load)
	id := ownedBy(t, joined, "counter", "c").ID
	// The host's connection to the new member is up, and carried what it
	// sent before (the lost completion failed in its writer): a request
	// sent after it is answered, if only by a dead letter.
	nobody := actor.NewPID(joined.Remote.Address(), "nobody")
	if _, err := host.System.Request(testkit.Context(t), nobody, wrapperspb.String("hello")); !errors.Is(err, actor.ErrDeadLetter) {
		t.Fatalf("request to %v: %v, want a dead letter", nobody, err)
	}
	f.Cut(host, joined)
	ask(t, joined.Cluster, id)
}
