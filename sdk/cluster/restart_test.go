package cluster_test

import (
	"context"
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
)

// restartLoad runs a cluster of four members and a client under load, and
// restarts each member but the load's anchor in turn at its address (a new
// process, a new member ID), with restart: every call succeeds, none gets
// another grain's answer, and once the members agree each identity has
// one activation, on a running member.
func restartLoad(t *testing.T, seed uint64, restart func(f *clustertest.Fixture, n *clustertest.Node) *clustertest.Node) {
	l := newLedger()
	f := clustertest.New(t, 4, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	client := f.AddClient()
	anchor, others := f.Members()[0], f.Members()[1:4]
	work := startLoad(t, []*cluster.Cluster{client.Cluster, anchor.Cluster}, 300, 8, seed)
	rng := rand.New(rand.NewPCG(seed, seed+1))
	rng.Shuffle(len(others), func(i, j int) { others[i], others[j] = others[j], others[i] })
	for _, old := range others {
		work.progress(t, 300)
		testkit.Eventually(t, old.Name+" to host activations", func() bool { return len(l.liveAt(old.Remote.Address())) > 0 })
		n := restart(f, old)
		if n.Remote.Address() != old.Remote.Address() || n.Cluster.Self().ID == old.Cluster.Self().ID {
			t.Fatalf("restarted %s (%s) as %s (%s): want the same address, another member ID",
				old.Cluster.Self().ID, old.Remote.Address(), n.Cluster.Self().ID, n.Remote.Address())
		}
		f.WaitConverged()
		work.progress(t, 300)
		noDuplicates(t, l)
		onRunningMembersOnly(t, f, l)
	}
	work.finish(t)
	noDuplicates(t, l)
	onRunningMembersOnly(t, f, l)
}

// A member's process dies and is restarted at the same address under a new
// member ID, after the membership dropped the old one.
func TestAMemberRestartedAtItsAddressAfterItWasDroppedUnderLoad(t *testing.T) {
	restartLoad(t, 11, func(f *clustertest.Fixture, old *clustertest.Node) *clustertest.Node {
		f.Kill(old)
		return f.Restart(old)
	})
}

// A member's process dies and is restarted at the same address under a new
// member ID while the membership still lists the old one (its failure
// detector lags): for a while two members share the address. Then the old
// one is dropped.
func TestAMemberRestartedAtItsAddressWhileStillListedUnderLoad(t *testing.T) {
	restartLoad(t, 12, func(f *clustertest.Fixture, old *clustertest.Node) *clustertest.Node {
		f.Crash(old)
		n := f.Restart(old)
		testkit.Eventually(t, "every member to list both", func() bool {
			for _, m := range f.Running() {
				top := m.Cluster.Topology()
				_, hasOld := top.Member(old.Cluster.Self().ID)
				_, hasNew := top.Member(n.Cluster.Self().ID)
				if !hasOld || !hasNew {
					return false
				}
			}
			return true
		})
		f.Registry.Kill(old.Cluster.Self().ID)
		return n
	})
}

// A member restarted at its address starts activations as the old process
// did, and callers still cache the old process's activations. An owner
// that hears from two callers that the old activation of an identity is
// gone (both got "no such process" from the new process) must not take the
// second notice as one about the activation it started for the first: if
// the new activation had the old one's PID, the owner dropped its live
// activation from its tables and started another (before, the new process
// numbered its activations from 1 as the old one did, and the identity
// ended with two).
func TestAnActivationOfARestartedMemberDoesNotTakeTheOldOnesPID(t *testing.T) {
	l := newLedger()
	pl := stallPlacement{entered: make(chan struct{}, 1), release: make(chan struct{})}
	kind := counterKind(l, 0)
	kind.Placement = pl
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{kind}})
	caller, other, old := f.Members()[0], f.Members()[1], f.Members()[2]
	// The old process starts an activation for each of these, in turn.
	var ids []cluster.ClusterIdentity
	old0 := make(map[cluster.ClusterIdentity]*actor.PID)
	for i := 0; len(ids) < 20; i++ {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("x", i)}
		if cluster.OwnerOf(old.Cluster.Topology(), id) != old.Cluster.Self().ID {
			continue
		}
		ask(t, caller.Cluster, id.ID)
		pid, err := caller.Cluster.Get(testkit.Context(t), id)
		if err != nil {
			t.Fatal(err)
		}
		cluster.Locate(caller.Cluster, id, pid) // both callers cache it
		cluster.Locate(other.Cluster, id, pid)
		ids = append(ids, id)
		old0[id] = pid
	}
	// It dies and comes back at its address before the membership drops
	// it: the caller's cache, which forgets the activations of members
	// that leave by address, keeps those.
	f.Crash(old)
	n := f.Restart(old)
	f.Registry.Kill(old.Cluster.Self().ID)
	f.WaitConverged()
	// The first of them, past the first, that the new process owns, and
	// the number of activations it started before it in the old process.
	var id cluster.ClusterIdentity
	before := 0
	for i, x := range ids[1:] {
		if cluster.OwnerOf(n.Cluster.Topology(), x) == n.Cluster.Self().ID {
			id, before = x, i+1
			break
		}
	}
	if id.ID == "" {
		t.Fatal("the new process owns none of the identities")
	}
	// The new process starts as many activations before it: the last one
	// while its identity actor stalls.
	for i := range before - 1 {
		ask(t, caller.Cluster, ownedBy(t, n, "counter", fmt.Sprint("fill", i, "-")).ID)
	}
	release := sync.OnceFunc(func() { close(pl.release) })
	defer release()
	stalled := make(chan error, 1)
	stall := ownedBy(t, n, "counter", "stall")
	go func() {
		_, err := caller.Cluster.Request(testkit.Context(t), stall, wrapperspb.String("inc"))
		stalled <- err
	}()
	<-pl.entered
	// Two callers find the old activation gone; their owner hears of it
	// once it has placed the stalled identity.
	var gone testkit.Recorder[*actor.PID]
	sub := actor.Subscribe(n.System.EventStream(), func(e *actor.DeadLetterEvent) {
		if e.PID.Equal(old0[id]) {
			gone.Add(e.PID)
		}
	})
	defer sub.Unsubscribe()
	calls := make(chan error, 2)
	for _, c := range []*cluster.Cluster{caller.Cluster, other.Cluster} {
		go func() {
			_, err := c.Request(testkit.Context(t), id, wrapperspb.String("inc"))
			calls <- err
		}()
	}
	gone.WaitLen(t, 2)
	release()
	for _, done := range []chan error{stalled, calls, calls} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if live := l.liveCount(id); live != 1 {
		t.Fatalf("%v has %d live activations, want 1", id, live)
	}
	if got := ask(t, caller.Cluster, id.ID); got != 3 {
		t.Fatalf("%v counted %d calls, want 3", id, got)
	}
}

// muteOnceKind is a grain kind whose activations answer requests with
// their id, once answer is closed, but for the first request any of them
// gets, which is never answered (as by a process that died before it
// answered); that request's arrival is signalled on received.
func muteOnceKind(received chan<- struct{}, answer <-chan struct{}) cluster.Kind {
	var muted atomic.Bool
	return cluster.Kind{Name: "mute", Props: actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); !ok {
			return
		}
		if !muted.Swap(true) {
			received <- struct{}{}
			return
		}
		<-answer
		id, _ := cluster.IdentityOf(c.Self())
		c.Respond(wrapperspb.String(id.ID))
	})}
}

// callMuted starts two members of opts, which hold a muteOnceKind of
// answer, and a call from the first (the caller) to a grain the second
// (the host) owns, and so hosts. It returns once the grain has the
// request, which it does not answer. The call's end comes on called: an
// error, or nil for the grain's answer to a retry.
func callMuted(t *testing.T, opts clustertest.Options, answer <-chan struct{}) (f *clustertest.Fixture, caller, host *clustertest.Node, called <-chan error) {
	t.Helper()
	received := make(chan struct{}, 1)
	opts.Kinds = []cluster.Kind{muteOnceKind(received, answer)}
	f = clustertest.New(t, 2, opts)
	caller, host = f.Members()[0], f.Members()[1]
	id := ownedBy(t, host, "mute", "m")
	ended := make(chan error, 1)
	go func() {
		res, err := caller.Cluster.Request(testkit.Context(t), id, wrapperspb.String("hello"))
		if who, ok := res.(*wrapperspb.StringValue); err == nil && (!ok || who.GetValue() != id.ID) {
			err = fmt.Errorf("answered %v", res)
		}
		ended <- err
	}()
	<-received
	return f, caller, host, ended
}

// A call waits for an answer lost with the connections between the caller
// and the grain's member, which broke without a goodbye (a network
// failure, here a proxy's cut) while both processes still ran, and were
// made again to the same processes. The answer will not come, and the call
// fails over at once: its retry is answered (before, it waited until its
// context ended).
func TestACallWaitingOnAnAnswerLostWithAConnectionFailsOver(t *testing.T) {
	answer := make(chan struct{})
	release := sync.OnceFunc(func() { close(answer) })
	defer release()
	f, caller, host, called := callMuted(t, clustertest.Options{Proxied: true}, answer)
	// Every connection between the two goes through the proxy of the one
	// dialed, whichever stream carries the request and the answer.
	f.Cut(caller, host)
	// The grain answers the retry once the host has an answer from the
	// caller on a connection made after the cut: until the host has
	// noticed the cut, its endpoint may write there, and an answer lost so
	// would leave the retry waiting too (the caller was told of its loss
	// already). A probe lost so is sent again.
	echo, err := caller.System.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Respond(m)
		}
	}), "echo")
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the host to reach the caller again", func() bool {
		ctx, cancel := context.WithTimeout(testkit.Context(t), probeTimeout)
		defer cancel()
		_, err := host.System.Request(ctx, echo, wrapperspb.String("probe"))
		return err == nil
	})
	release()
	if err := <-called; err != nil {
		t.Fatal(err)
	}
}

// probeTimeout bounds one probe of a connection: a probe lost with a
// broken connection is sent again after it.
const probeTimeout = 200 * time.Millisecond

// A call waits for an answer the member's process owed when it died, and
// the process is restarted at its address while the membership still lists
// the old one. The connection to the address reaches the new process: the
// answer will not come, and the call fails over at once (before, it waited
// until the membership dropped the old member, or, for a request written
// on the old connection after the membership had, until its context
// ended).
func TestACallWaitingOnAProcessRestartedAtItsAddressFailsOver(t *testing.T) {
	metrics := &countingMetrics{}
	answer := make(chan struct{})
	close(answer)
	f, _, old, called := callMuted(t, clustertest.Options{Cluster: cluster.Config{Metrics: metrics}}, answer)
	f.Crash(old)
	f.Restart(old)
	testkit.Eventually(t, "the call to fail over", func() bool { return metrics.retries.Load() > 0 })
	f.Registry.Kill(old.Cluster.Self().ID)
	if err := <-called; err != nil {
		t.Fatal(err)
	}
}

// onMember places the activations of identities whose id starts with "on"
// on the member of ID target while it is a candidate, and on the owner
// otherwise.
type onMember struct{ target *atomic.Pointer[string] }

func (p onMember) Place(id cluster.ClusterIdentity, owner string, candidates []cluster.Member) string {
	if target := p.target.Load(); target != nil && strings.HasPrefix(id.ID, "on") {
		for _, m := range candidates {
			if m.ID == *target {
				return m.ID
			}
		}
	}
	return owner
}

// A member's process is restarted at its address while the membership
// still lists the old one, and an owner's placement chooses the old member
// to host an activation. The request to place it reaches the new process,
// which must not start it as if it were the old member: the owner would
// record it as the old member's, forget it when the membership drops that
// member, and start a second activation (before, the new process started
// it, and the identity ended with two).
func TestAPlacementForTheOldProcessIsNotMadeByTheNewOneAtItsAddress(t *testing.T) {
	l := newLedger()
	var target atomic.Pointer[string]
	kind := counterKind(l, 0)
	kind.Placement = onMember{target: &target}
	f := clustertest.New(t, 2, clustertest.Options{Kinds: []cluster.Kind{kind}})
	owner, old := f.Members()[0], f.Members()[1]
	oldID := old.Cluster.Self().ID
	target.Store(&oldID)
	f.Crash(old)
	n := f.Restart(old)
	f.WaitConverged() // the registry lists both
	// An identity the owner owns both with and without the old member.
	after := cluster.Topology{Members: []cluster.Member{owner.Cluster.Self(), n.Cluster.Self()}}
	var id cluster.ClusterIdentity
	for i := 0; ; i++ {
		id = cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("on", i)}
		me := owner.Cluster.Self().ID
		if cluster.OwnerOf(owner.Cluster.Topology(), id) == me && cluster.OwnerOf(after, id) == me {
			break
		}
	}
	// The call fails over and over (the old member cannot place it) or
	// lands on the new process; either way, once the old member is
	// dropped, the identity has one activation.
	ctx, cancel := context.WithTimeout(testkit.Context(t), 200*time.Millisecond)
	_, _ = owner.Cluster.Request(ctx, id, wrapperspb.String("inc"))
	cancel()
	f.Registry.Kill(oldID)
	f.WaitConverged()
	ask(t, owner.Cluster, id.ID)
	ask(t, n.Cluster, id.ID)
	if live := l.liveCount(id); live != 1 {
		t.Fatalf("%v has %d live activations, want 1", id, live)
	}
}

// A handover completion meant for another member (one that ran earlier at
// this member's address) is not counted: what it says (a full report, for
// one) holds only for the member it was for. Counted, a forged "full"
// completion of a host that has not reported yet would let a new owner
// answer for the host's grains and start second activations.
func TestACompletionMeantForAnotherMemberIsNotCounted(t *testing.T) {
	s := startStallable(t)
	f, t1 := s.f, s.t1
	b := f.Members()[1]
	s.stall(t, b.Cluster.Self().ID) // b reports nothing of the next topology
	c := f.AddMember()
	t2 := c.Cluster.Topology()
	var moved []cluster.ClusterIdentity
	for i := range stallableGrains {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("x", i)}
		if cluster.OwnerOf(t1, id) == b.Cluster.Self().ID && cluster.OwnerOf(t2, id) == c.Cluster.Self().ID {
			moved = append(moved, id)
		}
	}
	if len(moved) == 0 {
		t.Fatal("no identity hosted on b moved to c")
	}
	// b's "full" completion of t2, meant for another member at c's address.
	c.System.Send(actor.NewPID(c.Remote.Address(), identityProcess), &clusterpb.HandoverComplete{
		TopologyHash: t2.Hash, MemberId: b.Cluster.Self().ID, PreviousHash: t1.Hash, Full: true, ReceiverId: "an-earlier-process",
	})
	// Calls to the moved grains from c (the first member's cache would go
	// straight to them): c must hold them until b reports.
	s.callsWait(t, c.Cluster, moved)
}
