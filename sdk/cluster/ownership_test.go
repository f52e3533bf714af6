package cluster

import (
	"fmt"
	"maps"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/troupehq/troupe/sdk/actor"
)

// sim is a cluster of ownerStates exchanging handover messages in memory.
type sim struct {
	t       *testing.T
	rng     *rand.Rand
	members map[string]Member
	states  map[string]*ownerState
	next    int
	topo    Topology
	// lossPct is the chance, in percent, that a report (a delta) is lost
	// on its way, as with a broken connection; the completion after it
	// arrives.
	lossPct int
	// cutPct is the chance, in percent, that a step of a change cuts the
	// connection between two members with messages on their way: all of
	// them are lost, both ways, and each side completes again, as the
	// identity actor does when it hears of the cut.
	cutPct int
}

func newSim(t *testing.T, seed uint64) *sim {
	return &sim{t: t, rng: rand.New(rand.NewPCG(seed, seed^0x5eed)), members: map[string]Member{}, states: map[string]*ownerState{}}
}

var simKinds = []string{"a", "b", "c"}

func (s *sim) addMember() {
	s.next++
	id := fmt.Sprintf("m%03d", s.next)
	var kinds []string
	for _, k := range simKinds {
		if s.rng.IntN(3) > 0 {
			kinds = append(kinds, k)
		}
	}
	s.members[id] = Member{ID: id, Address: "127.0.0.1:" + id, Kinds: kinds}
	s.states[id] = newOwnerState(id)
}

func (s *sim) memberList() []Member {
	var out []Member
	for _, m := range s.members {
		out = append(out, m)
	}
	// Members see the set in any order: the topology must not depend on it.
	s.rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// topology returns the topology of the current member set.
func (s *sim) topology() Topology {
	sorted := normalize(s.memberList())
	return Topology{Hash: topologyHash(sorted), Members: sorted}
}

// change applies a new topology to every member, delivering deltas and
// completions in a random order, some before their receiver adopts it. It
// returns each member's deltas.
func (s *sim) change() (deltas map[string]map[string][]entry) {
	topo := s.topology()
	if topo.Hash == s.topo.Hash {
		return nil // the member list emits a topology only when the set changes
	}
	return s.changeThrough([]Topology{topo}, false)
}

// joinTwice adds two members one after the other; members that are not new
// may see only the final topology (a membership that merges changes), the
// others see both.
func (s *sim) joinTwice() {
	s.addMember()
	mid := s.topology()
	s.addMember()
	s.changeThrough([]Topology{mid, s.topology()}, true)
}

// changeThrough makes every member adopt topos in order, each member
// skipping intermediate ones at random if skip is set, while deltas and
// completions (in order per pair, as the transport guarantees) are
// delivered at random moments. It returns the deltas of the last topology.
func (s *sim) changeThrough(topos []Topology, skip bool) map[string]map[string][]entry {
	hist := make([]histStep, len(topos))
	for i, t := range topos {
		hist[i] = histStep{topo: t}
	}
	skipPct := 0
	if skip {
		skipPct = 50
	}
	return s.changeHistory(hist, skipPct, "")
}

// histStep is a member set in a history of changes, and the members that
// left by crashing when it came.
type histStep struct {
	topo  Topology
	crash []string
}

// changeHistory makes every member adopt the topologies of hist in order,
// each member skipping an intermediate one with probability skipPct%,
// while deltas and completions (in order per pair, as the transport
// guarantees) are delivered at random moments. A member that crashed
// loses its state (and activations) at a random moment, while what it
// sent may still be on its way. lagger, if set, adopts its topologies
// late. It returns the deltas of the last topology.
func (s *sim) changeHistory(hist []histStep, skipPct int, lagger string) map[string]map[string][]entry {
	last := hist[len(hist)-1].topo
	s.topo = last
	ids := make([]string, 0, len(s.states))
	for id := range s.states {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	plan := map[string][]Topology{}
	for _, id := range ids {
		seen := s.states[id].hash()
		for i, h := range hist {
			_, in := h.topo.Member(id)
			// The member list emits a topology only when the set changes.
			if in && h.topo.Hash != seen && (i == len(hist)-1 || skipPct == 0 || s.rng.IntN(100) >= skipPct) {
				plan[id] = append(plan[id], h.topo)
				seen = h.topo.Hash
			}
		}
	}
	var crashing []string
	for _, h := range hist {
		crashing = append(crashing, h.crash...)
	}
	type msg struct {
		to, from string
		hash     uint64
		entries  []entry
		done     *mark
		seq      uint64 // the count the identity actor puts on it
	}
	var queue []msg
	send := func(m msg) {
		m.seq = s.states[m.from].sequence(m.to)
		queue = append(queue, m)
	}
	deltas := map[string]map[string][]entry{}
	// sendOwed queues the full reports member owes, as the identity actor
	// sends them.
	sendOwed := func(member string) {
		st := s.states[member]
		if st == nil || st.place == nil {
			return // sent once it adopts a topology
		}
		h := st.place.topo.Hash
		for _, o := range st.takeOwed() {
			if o.report {
				send(msg{to: o.to, from: member, hash: h, entries: o.entries})
			}
			send(msg{to: o.to, from: member, hash: h, done: &o.mark})
		}
	}
	cut := func() {
		pick := queue[s.rng.IntN(len(queue))]
		queue = slices.DeleteFunc(queue, func(m msg) bool {
			return m.from == pick.from && m.to == pick.to || m.from == pick.to && m.to == pick.from
		})
		for _, side := range [][2]string{{pick.from, pick.to}, {pick.to, pick.from}} {
			if st := s.states[side[0]]; st != nil {
				if mk, ok := st.again(side[1]); ok {
					send(msg{to: side[1], from: side[0], hash: st.hash(), done: &mk})
				}
				sendOwed(side[0])
			}
		}
	}
	deliver := func() {
		pick := queue[s.rng.IntN(len(queue))]
		for i, m := range queue {
			if m.from == pick.from && m.to == pick.to { // the pair's oldest
				queue = append(queue[:i], queue[i+1:]...)
				st := s.states[m.to]
				if st == nil {
					return // it left
				}
				if m.done == nil && s.rng.IntN(100) < s.lossPct {
					return // lost
				}
				st.arrived(m.from, m.seq)
				if m.done != nil {
					st.applyDone(m.hash, *m.done)
					sendOwed(m.to)
				} else {
					st.applyDelta(m.hash, m.from, m.entries)
				}
				return
			}
		}
	}
	for {
		var ready []string
		for _, id := range ids {
			if len(plan[id]) > 0 && s.states[id] != nil {
				ready = append(ready, id)
			}
		}
		if len(ready) == 0 && len(queue) == 0 {
			for _, id := range crashing {
				delete(s.states, id)
			}
			return deltas
		}
		for range 4 {
			if id := ids[s.rng.IntN(len(ids))]; s.states[id] != nil {
				s.activateMidChange(id)
			}
		}
		if len(crashing) > 0 && s.rng.IntN(8) == 0 {
			i := s.rng.IntN(len(crashing))
			delete(s.states, crashing[i])
			crashing = slices.Delete(crashing, i, i+1)
			continue
		}
		if lagger != "" && len(ready) > 1 && slices.Contains(ready, lagger) && s.rng.IntN(4) > 0 {
			ready = slices.DeleteFunc(ready, func(id string) bool { return id == lagger })
		}
		if len(queue) > 0 && s.rng.IntN(100) < s.cutPct {
			cut()
			continue
		}
		if len(queue) > 0 && (len(ready) == 0 || s.rng.IntN(2) == 0) {
			deliver()
			continue
		}
		id := ready[s.rng.IntN(len(ready))]
		t := plan[id][0]
		plan[id] = plan[id][1:]
		d := s.states[id].adopt(newPlacement(t))
		if t.Hash == last.Hash {
			deltas[id] = d
		}
		for to, es := range d {
			send(msg{to: to, from: id, hash: t.Hash, entries: es})
		}
		for _, m := range t.Members {
			if m.ID != id {
				mk := s.states[id].markFor(m.ID)
				send(msg{to: m.ID, from: id, hash: t.Hash, done: &mk})
			}
		}
		sendOwed(id)
	}
}

// activate starts an activation the way the identity actor does: on the
// owner.
func (s *sim) activate(id ClusterIdentity) bool {
	p := newPlacement(s.topo)
	owner, ok := p.owner(id)
	if !ok {
		return false
	}
	st := s.states[owner]
	if _, ok := st.owned[id]; ok {
		return true
	}
	st.hostStarted(id, actor.NewPID(s.members[owner].Address, grainName(id, 1)))
	return true
}

// activateMidChange serves an activation request for id at member while
// topologies change, as the identity actor does: only if member owns id in
// the topology it has adopted, knows no activation, and no handover may
// still bring one.
func (s *sim) activateMidChange(member string) {
	st := s.states[member]
	if st.place == nil {
		return
	}
	id := randomIdentity(s.rng)
	if owner, ok := st.place.owner(id); !ok || owner != member {
		return
	}
	if _, ok := st.owned[id]; ok || st.inFlux(id) {
		return
	}
	st.hostStarted(id, actor.NewPID(s.members[member].Address, grainName(id, 1)))
}

// check verifies every member's owner table against the activations that
// really exist.
func (s *sim) check(step int) {
	p := newPlacement(s.topo)
	real := map[ClusterIdentity]activation{}
	for host, st := range s.states {
		for id, pid := range st.hosted {
			if prev, dup := real[id]; dup {
				s.t.Fatalf("step %d: %v active on %s and %s", step, id, prev.host, host)
			}
			real[id] = activation{pid, host}
		}
	}
	for member, st := range s.states {
		if !st.complete {
			s.t.Fatalf("step %d: %s did not complete the handover: done %v, untrusted %v", step, member, st.done, st.untrusted)
		}
		want := map[ClusterIdentity]activation{}
		for id, act := range real {
			if owner, _ := p.owner(id); owner == member {
				want[id] = act
			}
		}
		if len(want) != len(st.owned) {
			s.t.Fatalf("step %d: %s owns %d entries, %d activations are its own", step, member, len(st.owned), len(want))
		}
		for id, act := range want {
			got, ok := st.owned[id]
			if !ok || got.host != act.host || !got.pid.Equal(act.pid) {
				s.t.Fatalf("step %d: %s's entry for %v = %+v, want %+v", step, member, id, got, act)
			}
		}
	}
}

func randomIdentity(rng *rand.Rand) ClusterIdentity {
	return ClusterIdentity{Kind: simKinds[rng.IntN(len(simKinds))], ID: fmt.Sprintf("id-%d", rng.IntN(400))}
}

// TestOwnerTablesMatchActivationsAfterEveryHandover runs random histories
// of joins, leaves, crashes and activations.
func TestOwnerTablesMatchActivationsAfterEveryHandover(t *testing.T) {
	for seed := range uint64(60) {
		s := newSim(t, seed)
		for range 2 + s.rng.IntN(4) {
			s.addMember()
		}
		var prev *placement
		for step := range 25 {
			deltas := s.change()
			cur := newPlacement(s.topo)
			// Minimal deltas: exactly the hosted activations whose owner
			// changed, each to its new owner.
			for host, d := range deltas {
				st := s.states[host]
				for id := range st.hosted {
					now, _ := cur.owner(id)
					var was string
					if prev != nil {
						was, _ = prev.owner(id)
					}
					sent := slices.ContainsFunc(d[now], func(e entry) bool { return e.id == id })
					if changed := now != was; changed && now != host && !sent {
						t.Fatalf("seed %d step %d: %s did not report %v to its new owner %s", seed, step, host, id, now)
					} else if !changed && sent {
						t.Fatalf("seed %d step %d: %s reported %v although its owner stayed %s", seed, step, host, id, now)
					}
				}
				for to, es := range d {
					for _, e := range es {
						if owner, _ := cur.owner(e.id); owner != to {
							t.Fatalf("seed %d step %d: %v sent to %s, owner is %s", seed, step, e.id, to, owner)
						}
					}
				}
			}
			s.check(step)
			prev = cur
			for range s.rng.IntN(60) {
				s.activate(randomIdentity(s.rng))
			}
			s.check(step)
			// The next change: joins, graceful leaves and crashes (a
			// member that leaves takes its activations with it).
			switch r := s.rng.IntN(6); {
			case r == 0 || len(s.members) < 2:
				s.addMember()
			case r == 1:
				s.removeRandom()
			case r == 2:
				// Two joins in quick succession, which some members see as
				// one change: checked after both.
				s.joinTwice()
				s.check(step)
				prev = newPlacement(s.topo)
			case r == 3:
				// A member that joins and leaves at once, which some
				// members do not see: checked after it left.
				s.joinAndLeave()
				s.check(step)
				prev = newPlacement(s.topo)
			default:
				s.addMember()
				s.removeRandom()
			}
		}
	}
}

// joinAndLeave adds a member that leaves again at once; members may see
// the change in between or not (a membership that merges changes): those
// that do drop the entries of identities the newcomer owned, which the
// others, seeing no change, do not report again.
func (s *sim) joinAndLeave() {
	s.addMember()
	id := fmt.Sprintf("m%03d", s.next)
	mid := s.topology()
	delete(s.members, id)
	s.changeThrough([]Topology{mid, s.topology()}, true)
	delete(s.states, id) // it crashed: its activations are gone
}

func (s *sim) removeRandom() {
	ids := make([]string, 0, len(s.members))
	for id := range s.members {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	gone := ids[s.rng.IntN(len(ids))]
	delete(s.members, gone)
	delete(s.states, gone)
}

func TestOwnerIsUniqueAndStable(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for round := range 200 {
		var members []Member
		for i := range 1 + rng.IntN(8) {
			m := Member{ID: fmt.Sprintf("m%d-%d", round, i)}
			for _, k := range simKinds {
				if rng.IntN(2) == 0 {
					m.Kinds = append(m.Kinds, k)
				}
			}
			members = append(members, m)
		}
		shuffled := slices.Clone(members)
		rng.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		a := newPlacement(Topology{Members: normalize(members)})
		b := newPlacement(Topology{Members: normalize(shuffled)})
		if topologyHash(normalize(members)) != topologyHash(normalize(shuffled)) {
			t.Fatal("the topology hash depends on member order")
		}
		for range 50 {
			id := randomIdentity(rng)
			oa, okA := a.owner(id)
			ob, okB := b.owner(id)
			if oa != ob || okA != okB {
				t.Fatalf("owner of %v depends on member order: %q vs %q", id, oa, ob)
			}
			hosts := slices.ContainsFunc(members, func(m Member) bool { return m.HasKind(id.Kind) })
			if okA != hosts {
				t.Fatalf("owner of %v found = %v, some member hosts the kind = %v", id, okA, hosts)
			}
			if okA {
				m, _ := Topology{Members: normalize(members)}.Member(oa)
				if !m.HasKind(id.Kind) {
					t.Fatalf("%v owned by %s, which does not host %q", id, oa, id.Kind)
				}
			}
		}
	}
}

func TestRendezvousMovesOnlyWhatItMust(t *testing.T) {
	var members []Member
	for i := range 5 {
		members = append(members, Member{ID: fmt.Sprintf("m%d", i), Kinds: []string{"k"}})
	}
	before := newPlacement(Topology{Members: normalize(members)})
	joined := append(slices.Clone(members), Member{ID: "m5", Kinds: []string{"k"}})
	after := newPlacement(Topology{Members: normalize(joined)})
	moved, toNew := 0, 0
	const n = 20000
	for i := range n {
		id := ClusterIdentity{"k", fmt.Sprint(i)}
		a, _ := before.owner(id)
		b, _ := after.owner(id)
		if a != b {
			moved++
			if b == "m5" {
				toNew++
			}
		}
	}
	if moved != toNew {
		t.Fatalf("%d identities moved between old members on a join", moved-toNew)
	}
	// A fair share (1/6) moves to the new member; allow generous slack.
	if share := float64(moved) / n; share < 0.12 || share > 0.22 {
		t.Fatalf("%.3f of identities moved to the new member, want about 1/6", share)
	}
}

func TestDiffAndHash(t *testing.T) {
	a := normalize([]Member{{ID: "b"}, {ID: "a"}, {ID: "c"}, {ID: "a"}})
	if len(a) != 3 || a[0].ID != "a" {
		t.Fatalf("normalize = %v", a)
	}
	b := normalize([]Member{{ID: "c"}, {ID: "d"}})
	joined, left := diff(a, b)
	if len(joined) != 1 || joined[0].ID != "d" || len(left) != 2 || left[0].ID != "a" || left[1].ID != "b" {
		t.Fatalf("diff = %v, %v", joined, left)
	}
	if topologyHash(a) == topologyHash(b) {
		t.Fatal("different member sets hash alike")
	}
	if _, ok := (Topology{Members: a}).Member("zz"); ok {
		t.Fatal("found a member that is not there")
	}
}

func TestGrainNamesRoundTrip(t *testing.T) {
	for _, id := range []ClusterIdentity{{"user", "42"}, {"k", "with/slash#and-hash"}, {"k", ""}} {
		name := grainName(id, 7)
		got, ok := parseGrainName(name)
		if !ok || got != id {
			t.Fatalf("parse(%q) = %v, %v; want %v", name, got, ok, id)
		}
	}
	for _, bad := range []string{"", "g/", "g/kind", "x/k/id#1", "g/k/id"} {
		if _, ok := parseGrainName(bad); ok {
			t.Fatalf("parsed %q", bad)
		}
	}
}

func TestGrainNamesFormatTheIncarnationInDecimal(t *testing.T) {
	for n, want := range map[uint64]string{0: "g/k/x#0", 7: "g/k/x#7", math.MaxUint64: "g/k/x#18446744073709551615"} {
		if got := grainName(ClusterIdentity{"k", "x"}, n); got != want {
			t.Errorf("grainName(k/x, %d) = %q, want %q", n, got, want)
		}
	}
}

// randomHistory changes the member set of s through a few changes that a
// membership which merges changes may show: joins, crashes, members that
// join and leave at once (alone, two at a time or one after the other, so
// that a topology comes back: A→B→A→C→A), and a crash followed by a join.
// It returns the history and, at times, a member to adopt it late.
func (s *sim) randomHistory() (hist []histStep, lagger string) {
	push := func(crash ...string) {
		hist = append(hist, histStep{topo: s.topology(), crash: crash})
	}
	join := func() string {
		s.addMember()
		push()
		return fmt.Sprintf("m%03d", s.next)
	}
	crash := func(id string) {
		delete(s.members, id)
		push(id)
	}
	anyMember := func() string {
		ids := slices.Sorted(maps.Keys(s.members))
		return ids[s.rng.IntN(len(ids))]
	}
	for range 1 + s.rng.IntN(5) {
		switch r := s.rng.IntN(7); {
		case r == 0 || len(s.members) < 2:
			join()
		case r == 1:
			crash(anyMember())
		case r == 2:
			crash(join())
		case r == 3:
			x := join()
			y := join()
			if s.rng.IntN(2) == 0 {
				x, y = y, x
			}
			crash(x)
			crash(y)
		case r == 4:
			crash(join())
			crash(join())
		case r == 5:
			crash(anyMember())
			join()
		default:
			crash(join())
			join()
		}
	}
	if s.rng.IntN(3) == 0 {
		lagger = anyMember()
	}
	return hist, lagger
}

// TestOwnerTablesMatchActivationsThroughFlapsAndCrashes runs random
// histories of several changes each, with members that join and leave at
// once, crashes whose messages are still on their way, members that skip
// different topologies, a member that lags behind, and activations
// started while topologies change.
func TestOwnerTablesMatchActivationsThroughFlapsAndCrashes(t *testing.T) {
	flapsAndCrashes(t, 0, 0)
}

// TestOwnerTablesMatchActivationsWhenReportsAreLost: the same histories,
// with a fifth of the reports lost on their way (each still followed by a
// completion from its sender): owners must see the loss, and get full
// reports instead.
func TestOwnerTablesMatchActivationsWhenReportsAreLost(t *testing.T) {
	flapsAndCrashes(t, 20, 0)
}

// TestOwnerTablesMatchActivationsWhenConnectionsBreak: the same histories,
// with connections between members cut now and then, losing the messages
// on their way both ways, each side then completing again: owners must see
// what was lost, get full reports instead, and complete.
func TestOwnerTablesMatchActivationsWhenConnectionsBreak(t *testing.T) {
	flapsAndCrashes(t, 0, 15)
}

// flapsAndCrashes runs the random histories with the sim's lossPct and
// cutPct.
func flapsAndCrashes(t *testing.T, lossPct, cutPct int) {
	for seed := range uint64(40) {
		s := newSim(t, seed)
		s.lossPct, s.cutPct = lossPct, cutPct
		for range 2 + s.rng.IntN(4) {
			s.addMember()
		}
		s.change()
		for step := range 10 {
			for range s.rng.IntN(60) {
				s.activate(randomIdentity(s.rng))
			}
			hist, lagger := s.randomHistory()
			s.changeHistory(hist, []int{0, 30, 50, 80}[s.rng.IntN(4)], lagger)
			s.check(step)
		}
	}
}

// TestAnOwnerThatGoesAwayAndBackBeforeTheNextChangeKeepsItsEntries: the
// owner r sees a member x join and leave (A→B→A) and then y join (C); the
// host h sees only A→C. h reports nothing for C (the grain's owner is r in
// both), and its completion of C names A, as r's does. r dropped the
// entry in B, and the full report h sends for r's return to A reaches it
// only after it adopted C: r must not count h's completion of C as the
// end of its handover without the entry.
func TestAnOwnerThatGoesAwayAndBackBeforeTheNextChangeKeepsItsEntries(t *testing.T) {
	a0, a, b, c := simTopo("h"), simTopo("h", "r"), simTopo("h", "r", "x"), simTopo("h", "r", "y")
	id := identityOwnedBy(t, []Topology{a, b, c}, "r", "x", "r")
	h, r, y := newOwnerState("h"), newOwnerState("r"), newOwnerState("y")
	h.adopt(newPlacement(a0))
	pid := actor.NewPID("h", grainName(id, 1))
	h.hostStarted(id, pid)

	// Both adopt A: h reports the grain to r, and they exchange marks.
	for owner, es := range h.adopt(newPlacement(a)) {
		r.applyDelta(a.Hash, "h", es)
		if owner != "r" {
			t.Fatalf("delta for %s", owner)
		}
	}
	r.adopt(newPlacement(a))
	r.applyDone(a.Hash, h.markFor("r"))
	h.applyDone(a.Hash, r.markFor("h"))
	if _, ok := r.owned[id]; !ok || !r.complete || !h.complete {
		t.Fatalf("A: r owns the grain %v, complete r %v h %v", ok, r.complete, h.complete)
	}

	// r goes through B and back to A, then to C; h goes from A to C.
	r.adopt(newPlacement(b))
	r.adopt(newPlacement(a))
	r.adopt(newPlacement(c))
	y.adopt(newPlacement(c))
	if d := h.adopt(newPlacement(c)); len(d) != 0 {
		t.Fatalf("h reports %v for C", d)
	}
	// h's completion of C reaches r before anything h sends in answer to
	// r's marks of B and A.
	r.applyDone(c.Hash, h.markFor("r"))
	r.applyDone(c.Hash, y.markFor("r"))
	if _, ok := r.owned[id]; !ok && !r.inFlux(id) {
		t.Fatalf("r completed C without the entry of %v: a second activation could start", id)
	}
}

// handoverNet delivers the handover messages of ownerStates in the order a
// test chooses, first in first out per pair, as the identity actor sends
// them.
type handoverNet struct {
	states map[string]*ownerState
	queue  map[[2]string][]func(*ownerState)
}

func newHandoverNet(ids ...string) *handoverNet {
	n := &handoverNet{states: map[string]*ownerState{}, queue: map[[2]string][]func(*ownerState){}}
	for _, id := range ids {
		n.states[id] = newOwnerState(id)
	}
	return n
}

// send queues f, a handover message from from to to, with the count the
// identity actor puts on it.
func (n *handoverNet) send(from, to string, f func(*ownerState)) {
	if _, ok := n.states[to]; ok {
		seq := n.states[from].sequence(to)
		n.queue[[2]string{from, to}] = append(n.queue[[2]string{from, to}], func(r *ownerState) {
			r.arrived(from, seq)
			f(r)
		})
	}
}

func (n *handoverNet) adopt(id string, t Topology) {
	st := n.states[id]
	for to, es := range st.adopt(newPlacement(t)) {
		n.send(id, to, func(r *ownerState) { r.applyDelta(t.Hash, id, es) })
	}
	for _, m := range t.Members {
		if m.ID != id {
			mk := st.markFor(m.ID)
			n.send(id, m.ID, func(r *ownerState) { n.done(r, t.Hash, mk) })
		}
	}
	n.sendOwed(id)
}

func (n *handoverNet) done(r *ownerState, hash uint64, m mark) {
	r.applyDone(hash, m)
	n.sendOwed(r.self)
}

func (n *handoverNet) sendOwed(id string) {
	st := n.states[id]
	h := st.hash()
	for _, o := range st.takeOwed() {
		if o.report {
			n.send(id, o.to, func(r *ownerState) { r.applyDelta(h, id, o.entries) })
		}
		n.send(id, o.to, func(r *ownerState) { n.done(r, h, o.mark) })
	}
}

// deliver delivers everything from sends to to, including what that
// sends in turn.
func (n *handoverNet) deliver(from, to string) {
	for len(n.queue[[2]string{from, to}]) > 0 {
		q := n.queue[[2]string{from, to}]
		f := q[0]
		n.queue[[2]string{from, to}] = q[1:]
		f(n.states[to])
	}
}

// drop loses everything from sends to to that is not delivered yet.
func (n *handoverNet) drop(from, to string) {
	delete(n.queue, [2]string{from, to})
}

// dropFirst loses the first message from sends to to that is not
// delivered yet.
func (n *handoverNet) dropFirst(from, to string) {
	n.queue[[2]string{from, to}] = n.queue[[2]string{from, to}][1:]
}

// ownsOnceAllArrive delivers what host has sent owner, which must not
// complete owner's handover without host's activation pid of id (a second
// activation could start), then everything, after which owner must have
// completed it with that activation.
func (n *handoverNet) ownsOnceAllArrive(t *testing.T, host, owner string, id ClusterIdentity, pid *actor.PID) {
	t.Helper()
	st := n.states[owner]
	n.deliver(host, owner)
	if _, ok := st.owned[id]; !ok && !st.inFlux(id) {
		t.Fatalf("%s completed its handover without %s's activation of %v: a second activation could start", owner, host, id)
	}
	n.settle()
	if act, ok := st.owned[id]; !ok || !act.pid.Equal(pid) || !st.complete {
		t.Fatalf("%s owns %v, complete %v (done %v, untrusted %v), want %s's activation %v", owner, act.pid, st.complete, st.done, st.untrusted, host, pid)
	}
}

// settle delivers everything, in a fixed order.
func (n *handoverNet) settle() {
	for {
		var pairs [][2]string
		for p, q := range n.queue {
			if len(q) > 0 {
				pairs = append(pairs, p)
			}
		}
		if len(pairs) == 0 {
			return
		}
		slices.SortFunc(pairs, func(a, b [2]string) int {
			if a[0] != b[0] {
				return strings.Compare(a[0], b[0])
			}
			return strings.Compare(a[1], b[1])
		})
		n.deliver(pairs[0][0], pairs[0][1])
	}
}

// identityOwnedBy returns the first identity of kind "k" (ids 0, 1, …)
// whose owner in each of topos is the member of owners at the same index.
func identityOwnedBy(t *testing.T, topos []Topology, owners ...string) ClusterIdentity {
	t.Helper()
	places := make([]*placement, len(topos))
	for j, topo := range topos {
		places[j] = newPlacement(topo)
	}
	for i := range 100_000 {
		id := ClusterIdentity{Kind: "k", ID: fmt.Sprint(i)}
		match := true
		for j, p := range places {
			if own, _ := p.owner(id); own != owners[j] {
				match = false
				break
			}
		}
		if match {
			return id
		}
	}
	t.Fatalf("no identity has owners %v in turn", owners)
	return ClusterIdentity{}
}

func simTopo(ids ...string) Topology {
	var ms []Member
	for _, id := range ids {
		ms = append(ms, Member{ID: id, Address: id, Kinds: []string{"k"}})
	}
	sorted := normalize(ms)
	return Topology{Hash: topologyHash(sorted), Members: sorted}
}

// TestAMemberUntrustedForAnEarlierTopologyIsAskedAgain: r sees x join and
// leave unseen by h (A→B→C, h: A→C), so each wants a full report from the
// other for C; r moves on to D before h's arrives. h's completion of D
// names C, as r's does, but r still lacks what h reported in full for C
// only: r must ask h again instead of waiting out the handover timeout.
func TestAMemberUntrustedForAnEarlierTopologyIsAskedAgain(t *testing.T) {
	n := newHandoverNet("h", "r", "y", "z")
	a, b, c, d := simTopo("h", "r"), simTopo("h", "r", "x"), simTopo("h", "r", "y"), simTopo("h", "r", "y", "z")
	n.adopt("h", a)
	n.adopt("r", a)
	n.settle()
	n.adopt("r", b)
	n.adopt("r", c)
	n.adopt("y", c)
	n.adopt("h", c)
	n.deliver("h", "r") // r finds h came to C from A: untrusted
	n.deliver("y", "r")
	n.adopt("r", d)
	n.adopt("y", d)
	n.adopt("z", d)
	n.deliver("r", "h") // h answers r's marks and request for C
	n.adopt("h", d)
	n.settle()
	for _, id := range []string{"h", "r", "y", "z"} {
		if st := n.states[id]; !st.complete {
			t.Fatalf("%s did not complete the handover of D: done %v, untrusted %v", id, st.done, st.untrusted)
		}
	}
}

// handoverNet delivers the handover messages of ownerStates in the order a
// test chooses, first in first out per pair, as the identity actor sends
// them.

// TestAMemberWhoseReportsWereLostIsAskedForAFullReport: n is a new process
// at the address of o, which died while the membership still listed it.
// h's report of a grain that moved to n, and its completion, were written
// on the connection to o's process and lost. o is dropped: h's completion
// of that topology names the one whose reports were lost as previous, as
// n's own previous does, but n must not take h's part as done without the
// grain's entry: it would start a second activation.
func TestAMemberWhoseReportsWereLostIsAskedForAFullReport(t *testing.T) {
	t0, t1, t2 := simTopo("h", "o"), simTopo("h", "o", "n"), simTopo("h", "n")
	id := identityOwnedBy(t, []Topology{t0, t1, t2}, "h", "n", "n")
	n := newHandoverNet("h", "o", "n")
	n.adopt("h", t0)
	n.adopt("o", t0)
	n.settle()
	pid := actor.NewPID("h", grainName(id, 1))
	n.states["h"].hostStarted(id, pid)
	delete(n.states, "o") // o's process dies; the membership lists it still
	n.adopt("n", t1)
	n.adopt("h", t1)
	n.drop("h", "n") // written on the connection to o's process
	n.adopt("h", t2)
	n.adopt("n", t2)
	n.ownsOnceAllArrive(t, "h", "n", id, pid) // h's completion of t2 comes first
}

// TestAReportLostBeforeItsCompletionIsCaught: o leaves, and h's report of
// a grain that moves from o to n is lost (a connection that broke after
// gRPC took the frame), but its completion, written after the reconnect,
// arrives. It names the topology n came from too, so n must see the loss
// some other way, or it starts a second activation of the grain.
func TestAReportLostBeforeItsCompletionIsCaught(t *testing.T) {
	t0, t1 := simTopo("h", "n", "o"), simTopo("h", "n")
	id := identityOwnedBy(t, []Topology{t0, t1}, "o", "n")
	n := newHandoverNet("h", "n", "o")
	for _, m := range []string{"h", "n", "o"} {
		n.adopt(m, t0)
	}
	n.settle()
	pid := actor.NewPID("h", grainName(id, 1))
	n.states["h"].hostStarted(id, pid)
	delete(n.states, "o")
	n.adopt("h", t1)
	n.adopt("n", t1)
	n.dropFirst("h", "n")                     // the report
	n.ownsOnceAllArrive(t, "h", "n", id, pid) // h's completion of t1
}

// A member that completes again after a broken connection, while it waits
// for a full report from the member at the other end, asks for it again:
// its request may have been lost with the connection, and the other side
// may not complete again (it may not have noticed the break).
func TestACompletionSentAgainAsksAgainForAFullReport(t *testing.T) {
	r := newOwnerState("r")
	r.adopt(newPlacement(simTopo("r", "s")))
	r.untrusted["s"] = true // its request for s's full report went out
	if owed := r.takeOwed(); len(owed) != 0 {
		t.Fatalf("r owes %+v before completing again", owed)
	}
	m, ok := r.again("s")
	if !ok || m.full || m.reply || m.request {
		t.Fatalf("again = %+v, %v; want a completion that is neither full, a reply nor a request", m, ok)
	}
	owed := r.takeOwed()
	if len(owed) != 1 || owed[0].to != "s" || owed[0].report || !owed[0].mark.request {
		t.Fatalf("r owes %+v after completing again, want a request for s's full report", owed)
	}
	if _, ok := r.again("x"); ok {
		t.Fatal("again completed to a member outside the topology")
	}
}
