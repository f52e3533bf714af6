package cluster

import (
	"slices"

	"github.com/troupehq/troupe/sdk/actor"
)

// activation is where an identity's activation lives.
type activation struct {
	pid  *actor.PID
	host string // member ID
}

// entry is one activation a host reports to an owner.
type entry struct {
	id  ClusterIdentity
	pid *actor.PID
}

// planHandover returns, for a change from topology prev to next, the
// activations a host must report to their new owners: exactly those whose
// owner changed, grouped by new owner. prev is nil for a member's first
// topology.
func planHandover(hosted map[ClusterIdentity]*actor.PID, prev, next *placement) map[string][]entry {
	out := make(map[string][]entry)
	for id, pid := range hosted {
		owner, ok := next.owner(id)
		if !ok {
			continue
		}
		var was string
		if prev != nil {
			was, _ = prev.owner(id)
		}
		if owner != was {
			out[owner] = append(out[owner], entry{id, pid})
		}
	}
	return out
}

// ownerState is the pure core of a member's identity actor: the identities
// it owns, the activations it hosts, and how both change with the topology.
// It does no I/O: its methods return what the caller must send.
//
// Ownership moves, activations do not. When the topology changes, every
// host reports to each new owner the activations it holds whose owner
// changed (planHandover), then tells every member it is done for that
// topology. A new owner answers for an identity that moved to it only when
// it has an entry for it, or once every member said it is done: until then
// an activation may still be on its way to it.
type ownerState struct {
	self   string
	place  *placement // current topology
	owned  map[ClusterIdentity]activation
	hosted map[ClusterIdentity]*actor.PID

	// Handover of the current topology: members whose completion arrived.
	done     map[string]bool
	complete bool
	// settled lists the topologies adopted since the last one whose
	// handover completed, that one first, the current one excluded; nil
	// while no handover has completed (a new member). An identity this
	// member owned in every one of them cannot have an activation it does
	// not know of: see inFlux.
	settled []*placement
	// prev is the topology adopted before the current one (nil for the
	// first), and adopted maps recently adopted topologies to the hash of
	// the one before each: what a member's completion is compared with.
	prev    *placement
	adopted map[uint64]uint64
	// untrusted holds members whose reports of changes cannot complete our
	// table (their last topologies differ from ours): only a full report
	// from them counts. owed holds members we must send a full report.
	untrusted map[string]bool
	owed      map[string]bool
	asks      map[string]bool // members to ask for a full report
	// lastMark is the topology of each member's last completion: a member
	// whose last one is for a topology we have not adopted is ahead of us,
	// and what it sends for our topology's hash is for our next topology
	// of that hash as much as for this one.
	lastMark map[string]uint64
	// sent counts the handover messages (deltas and completions) this
	// member sent each member, and seen holds the count on the last one
	// each member sent us. Messages of one sender arrive in the order sent,
	// so a count that is not the next one says some were lost: the sender
	// is untrusted and asked for a full report at once, and gaps holds the
	// members whose next completion is taken as lost (see mark.lost), so
	// that a full one whose report was lost does not make them trusted.
	sent, seen map[string]uint64
	gaps       map[string]bool
	// Deltas and completions for topologies other than the current one:
	// their senders are ahead of us (applied in full if we adopt them), or
	// saw a topology we skip (membership may merge changes). A host reports
	// an activation once, for the topology in which its owner changed, so
	// every adopt also records the early entries it now owns.
	early      map[uint64]*earlyHandover
	earlyOrder []uint64 // early's topologies, oldest first
	// moved holds the entries this member dropped because their identity
	// moved to another owner since its last completed handover: if it
	// gets them back (A→B→A), their hosts may not report them again (a
	// host that did not see B has no change to report, and a completion
	// of A it sent before may count for our return to A).
	moved map[ClusterIdentity]activation
}

type earlyHandover struct {
	entries []hostedEntry
	done    []mark
}

// mark is a member's completion of its handover for a topology: it has
// sent us its reports.
//
// A host reports the activations whose owner changed between its previous
// topology and this one. That completes our table only if our previous
// topology was the same (or we were not in the host's, so that it reported
// every activation we own: full). Membership may merge changes, and a
// member that saw a topology another skipped (a member that joined and left
// at once) dropped entries that nobody reports again: when the previous
// topologies differ, each side sends the other a full report, and only
// that counts.
type mark struct {
	member string
	prev   uint64 // the hash of the sender's previous topology (0: none)
	full   bool   // its reports were every activation we own on it
	reply  bool   // a full report answering a mark of ours: never answered
	// request asks for a full report: its sender does not trust our
	// reports for the topology it is in (a completion of ours from an
	// earlier topology of the same hash reached it late).
	request bool
	// lost, set by the receiver (it does not travel), says that some of
	// the handover messages the sender sent us before this one were lost
	// (see ownerState.gaps): with a broken connection, as dead letters,
	// or on a connection to an address whose old process had died when
	// the sender wrote on it, and a new one runs there now. Its reports
	// cannot complete our table, even a full one.
	lost bool
}

type hostedEntry struct {
	entry
	host string
}

// maxEarly bounds the topologies whose early handover messages are kept.
const maxEarly = 16

func newOwnerState(self string) *ownerState {
	return &ownerState{
		self:   self,
		owned:  make(map[ClusterIdentity]activation),
		hosted: make(map[ClusterIdentity]*actor.PID),
		done:   make(map[string]bool),
		early:  make(map[uint64]*earlyHandover),
		moved:  make(map[ClusterIdentity]activation),

		adopted:   make(map[uint64]uint64),
		untrusted: make(map[string]bool),
		owed:      make(map[string]bool),
		asks:      make(map[string]bool),
		lastMark:  make(map[string]uint64),
		sent:      make(map[string]uint64),
		seen:      make(map[string]uint64),
		gaps:      make(map[string]bool),
	}
}

// ahead reports whether member's last completion is for a topology this
// member has not adopted lately (see lastMark).
func (s *ownerState) ahead(member string) bool {
	h, ok := s.lastMark[member]
	if !ok || h == s.hash() {
		return false
	}
	_, adopted := s.adopted[h]
	return !adopted
}

// prevHash returns the hash of the previous topology (0 if none).
func (s *ownerState) prevHash() uint64 {
	if s.prev == nil {
		return 0
	}
	return s.prev.topo.Hash
}

// markFor returns this member's completion of the current topology for
// member.
func (s *ownerState) markFor(member string) mark {
	return mark{member: s.self, prev: s.prevHash(), full: s.fullTo(member)}
}

// fullTo reports whether this member's reports of the current topology to
// member are every activation member owns here: member was not in the
// previous topology, so each one changed owner.
func (s *ownerState) fullTo(member string) bool {
	if s.prev == nil {
		return true
	}
	_, was := s.prev.topo.Member(member)
	return !was
}

// fullReports returns, for each of members, every activation this member
// hosts that it owns in the current topology: one pass over the hosted
// activations, however many members want one.
func (s *ownerState) fullReports(members []string) map[string][]entry {
	out := make(map[string][]entry, len(members))
	for _, m := range members {
		out[m] = nil
	}
	if len(members) == 0 {
		return out
	}
	for id, pid := range s.hosted {
		owner, _ := s.place.owner(id)
		if es, want := out[owner]; want {
			out[owner] = append(es, entry{id, pid})
		}
	}
	return out
}

// owedMessage is what this member owes another for the current topology:
// a full report (its entries, then mark, a full reply) or, without report,
// a request for one (mark alone).
type owedMessage struct {
	to      string
	report  bool
	entries []entry
	mark    mark
}

// takeOwed returns the full reports and requests this member owes members
// of the current topology, and forgets them. Before the first topology it
// returns nothing and keeps them.
func (s *ownerState) takeOwed() []owedMessage {
	if s.place == nil {
		return nil
	}
	member := func(id string) bool { _, ok := s.place.topo.Member(id); return ok }
	owed := slices.DeleteFunc(takeSet(s.owed), func(id string) bool { return !member(id) })
	asks := slices.DeleteFunc(takeSet(s.asks), func(id string) bool { return !member(id) })
	reports := s.fullReports(owed)
	out := make([]owedMessage, 0, len(owed)+len(asks))
	for _, to := range owed {
		out = append(out, owedMessage{to: to, report: true, entries: reports[to], mark: mark{member: s.self, prev: s.prevHash(), full: true, reply: true}})
	}
	for _, to := range asks {
		out = append(out, owedMessage{to: to, mark: mark{member: s.self, request: true}})
	}
	return out
}

// takeSet empties set and returns what it held, sorted.
func takeSet(set map[string]bool) []string {
	out := make([]string, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	clear(set)
	slices.Sort(out)
	return out
}

// judge weighs m, a completion of a topology whose previous topology here
// was prev: it marks its sender untrusted if its reports cannot complete
// our table, trusted again if it sent a full report, and owed a full
// report if ours cannot complete its table. fullTo says whether our own
// reports to the sender were full. An untrusted member stays so from one
// topology to the next (its reports of changes do not bring what it did
// not report before), so each completion of it that is not full asks it
// again: the full report it sent for an earlier one may have reached us
// only after we moved on.
func (s *ownerState) judge(m mark, prev uint64, fullTo bool) {
	switch {
	case m.full:
		delete(s.untrusted, m.member)
	case m.prev != prev || m.lost || s.untrusted[m.member]:
		s.untrusted[m.member] = true
		s.asks[m.member] = true
	}
	// A member new to the cluster (no previous topology) that got a full
	// report from us needs no other.
	if !m.reply && m.prev != prev && (m.prev != 0 || !fullTo) {
		s.owed[m.member] = true
	}
}

// count records m, a completion of the current topology, if it completes
// its sender's part.
func (s *ownerState) count(m mark) {
	s.judge(m, s.prevHash(), s.fullTo(m.member))
	if !s.untrusted[m.member] {
		s.markDone(m.member)
	}
}

// hash returns the current topology's hash (0 before the first).
func (s *ownerState) hash() uint64 {
	if s.place == nil {
		return 0
	}
	return s.place.topo.Hash
}

// adopt switches to the topology of p. It returns the deltas this member
// must send to other owners (those for itself are applied at once); the
// caller then sends them and a completion to every member of the topology.
// Owned entries whose host left, or that this member no longer owns, are
// dropped.
func (s *ownerState) adopt(p *placement) map[string][]entry {
	switch {
	case s.place == nil: // the first topology: nothing settled yet
	case s.complete:
		s.settled = append(s.settled[:0], s.place)
	case s.settled != nil && len(s.settled) < maxEarly:
		s.settled = append(s.settled, s.place)
	default:
		// A long run of changes without a completed handover: ask
		// for every identity not known until this one completes.
		s.settled = nil
	}
	deltas := planHandover(s.hosted, s.place, p)
	if len(s.adopted) >= maxEarly {
		clear(s.adopted)
	}
	s.adopted[p.topo.Hash] = s.hash()
	s.prev, s.place = s.place, p
	for m := range s.untrusted {
		if _, alive := p.topo.Member(m); !alive {
			delete(s.untrusted, m)
		}
	}
	for _, counts := range []map[string]uint64{s.lastMark, s.sent, s.seen} {
		for m := range counts {
			if _, alive := p.topo.Member(m); !alive {
				delete(counts, m)
			}
		}
	}
	for _, set := range []map[string]bool{s.owed, s.asks, s.gaps} {
		for m := range set {
			if _, alive := p.topo.Member(m); !alive {
				delete(set, m)
			}
		}
	}
	for id, act := range s.owned {
		if _, alive := p.topo.Member(act.host); !alive {
			delete(s.owned, id)
			continue
		}
		if owner, _ := p.owner(id); owner != s.self {
			delete(s.owned, id)
			s.moved[id] = act
		}
	}
	for id, act := range s.moved {
		if _, alive := p.topo.Member(act.host); !alive {
			delete(s.moved, id)
			continue
		}
		if owner, _ := p.owner(id); owner == s.self {
			delete(s.moved, id)
			if _, ok := s.owned[id]; !ok {
				s.owned[id] = act
			}
		}
	}
	for _, e := range deltas[s.self] {
		s.owned[e.id] = activation{pid: e.pid, host: s.self}
	}
	delete(deltas, s.self)

	clear(s.done)
	s.complete = false
	s.markDone(s.self)
	if early := s.early[p.topo.Hash]; early != nil {
		s.dropEarly(p.topo.Hash)
		for _, e := range early.entries {
			s.record(e.entry, e.host)
		}
		for _, m := range early.done {
			s.count(m)
		}
	}
	for _, early := range s.early {
		for _, e := range early.entries {
			s.record(e.entry, e.host)
		}
	}
	return deltas
}

// applyDelta records activations a host reports for topology hash.
func (s *ownerState) applyDelta(hash uint64, host string, entries []entry) {
	if hash != s.hash() || s.ahead(host) {
		e := s.earlyFor(hash)
		for _, x := range entries {
			e.entries = append(e.entries, hostedEntry{x, host})
		}
	}
	for _, x := range entries {
		s.record(x, host)
	}
}

// record keeps an activation reported by its host if this member owns the
// identity and the host is still a member.
func (s *ownerState) record(e entry, host string) {
	if s.place == nil {
		return // kept in early until the first topology
	}
	if _, alive := s.place.topo.Member(host); !alive {
		return
	}
	if owner, _ := s.place.owner(e.id); owner == s.self {
		s.owned[e.id] = activation{pid: e.pid, host: host}
	}
}

// applyDone records m, a member's completion of topology hash. It reports
// whether the handover of the current topology just completed; takeOwed
// then says who must get a full report.
func (s *ownerState) applyDone(hash uint64, m mark) bool {
	if m.request {
		s.owed[m.member] = true
		return false
	}
	ahead := s.ahead(m.member)
	if s.gaps[m.member] {
		delete(s.gaps, m.member)
		m.lost, m.full = true, false
	}
	if !m.reply {
		s.lastMark[m.member] = hash
	}
	if hash == s.hash() {
		if ahead {
			// Also for our next topology of this hash.
			e := s.earlyFor(hash)
			e.done = append(e.done, m)
		}
		if s.complete {
			s.judge(m, s.prevHash(), s.fullTo(m.member))
			return false
		}
		s.count(m)
		return s.complete
	}
	if prev, ok := s.adopted[hash]; ok && !m.reply && m.prev != prev {
		// A topology we adopted before, reached by the sender from another
		// one: its table may lack activations we host, and we may have
		// moved on, so that we never get its completion of the topology
		// we are in. Not trusting it for that would be wrong if the
		// completion is for our next topology of the same hash.
		s.owed[m.member] = true
	}
	e := s.earlyFor(hash) // we may adopt it (again)
	e.done = append(e.done, m)
	return false
}

// again returns this member's completion of the current topology for
// member, to send it again after what we sent it may have been lost (see
// identityActor.completeAgain), and false if member is not in the current
// topology. It is never full: the reports a full one stands for were sent
// before the first, and may be what was lost. A request for a full report
// we sent member may have been lost too: if we still wait for one, it is
// asked again.
func (s *ownerState) again(member string) (mark, bool) {
	if s.place == nil || member == s.self {
		return mark{}, false
	}
	if _, ok := s.place.topo.Member(member); !ok {
		return mark{}, false
	}
	if s.untrusted[member] {
		s.asks[member] = true
	}
	m := s.markFor(member)
	m.full = false
	return m, true
}

// sequence returns the count to put on the next handover message to
// member (see sent).
func (s *ownerState) sequence(to string) uint64 {
	s.sent[to]++
	return s.sent[to]
}

// arrived records seq, the count on a handover message from member, before
// the message is applied (0, from an older member, is not checked).
func (s *ownerState) arrived(member string, seq uint64) {
	if seq == 0 {
		return
	}
	if seq != s.seen[member]+1 {
		// What was lost may have been for any topology, also one we will
		// not adopt again: the sender is untrusted from now on, whatever
		// the topology of its next completion, until a full report.
		s.gaps[member] = true
		s.untrusted[member] = true
		s.asks[member] = true
	}
	s.seen[member] = seq
}

func (s *ownerState) markDone(member string) {
	s.done[member] = true
	for _, m := range s.place.topo.Members {
		if !s.done[m.ID] {
			return
		}
	}
	s.complete = true
	clear(s.moved)
}

// forceComplete ends the current handover without every completion (the
// handover timeout). It returns the members that did not report.
func (s *ownerState) forceComplete() []string {
	var missing []string
	for _, m := range s.place.topo.Members {
		if !s.done[m.ID] {
			missing = append(missing, m.ID)
		}
	}
	s.complete = true
	clear(s.moved)
	clear(s.untrusted)
	return missing
}

func (s *ownerState) earlyFor(hash uint64) *earlyHandover {
	e := s.early[hash]
	if e == nil {
		for len(s.early) >= maxEarly {
			// Far more topologies than a healthy cluster goes through
			// between two of ours: the oldest are stale.
			delete(s.early, s.earlyOrder[0])
			s.earlyOrder = s.earlyOrder[1:]
		}
		e = &earlyHandover{}
		s.early[hash] = e
		s.earlyOrder = append(s.earlyOrder, hash)
	}
	return e
}

// dropEarly forgets the early messages for hash.
func (s *ownerState) dropEarly(hash uint64) {
	delete(s.early, hash)
	s.earlyOrder = slices.DeleteFunc(s.earlyOrder, func(h uint64) bool { return h == hash })
}

// inFlux reports whether a handover may still bring an activation of id,
// which this member owns: unless the current handover completed, that is
// so for an identity that moved to this member in any topology since the
// last completed handover, not only in the current one (a member may adopt
// several topologies before the first handover ends).
func (s *ownerState) inFlux(id ClusterIdentity) bool {
	if s.complete {
		return false
	}
	if _, ok := s.owned[id]; ok {
		return false
	}
	if s.settled == nil {
		return true
	}
	for _, p := range s.settled {
		if owner, _ := p.owner(id); owner != s.self {
			return true
		}
	}
	return false
}

// hostStarted records an activation this member now hosts; if it owns the
// identity, it records it as owner too.
func (s *ownerState) hostStarted(id ClusterIdentity, pid *actor.PID) {
	s.hosted[id] = pid
	if owner, _ := s.place.owner(id); owner == s.self {
		s.owned[id] = activation{pid: pid, host: s.self}
	}
}

// hostStopped forgets an activation this member hosted. It returns the
// owner to tell, if another member owns the identity.
func (s *ownerState) hostStopped(id ClusterIdentity, pid *actor.PID) (owner string, tell bool) {
	if cur, ok := s.hosted[id]; !ok || !cur.Equal(pid) {
		return "", false
	}
	delete(s.hosted, id)
	s.ownerForgets(id, pid)
	if s.place == nil {
		return "", false
	}
	owner, ok := s.place.owner(id)
	return owner, ok && owner != s.self
}

// ownerForgets drops an owned entry, and early reports of it, if they
// still point at pid.
func (s *ownerState) ownerForgets(id ClusterIdentity, pid *actor.PID) {
	if act, ok := s.owned[id]; ok && act.pid.Equal(pid) {
		delete(s.owned, id)
	}
	if act, ok := s.moved[id]; ok && act.pid.Equal(pid) {
		delete(s.moved, id)
	}
	for _, early := range s.early {
		early.entries = slices.DeleteFunc(early.entries, func(e hostedEntry) bool {
			return e.id == id && e.pid.Equal(pid)
		})
	}
}
