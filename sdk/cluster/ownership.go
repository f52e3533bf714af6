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
	// Deltas and completions for topologies other than the current one:
	// their senders are ahead of us (applied in full if we adopt them), or
	// saw a topology we skip (membership may merge changes). A host reports
	// an activation once, for the topology in which its owner changed, so
	// every adopt also records the early entries it now owns.
	early map[uint64]*earlyHandover
}

type earlyHandover struct {
	entries []hostedEntry
	done    []string
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
	s.place = p
	for id, act := range s.owned {
		if _, alive := p.topo.Member(act.host); !alive {
			delete(s.owned, id)
			continue
		}
		if owner, _ := p.owner(id); owner != s.self {
			delete(s.owned, id)
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
		delete(s.early, p.topo.Hash)
		for _, e := range early.entries {
			s.record(e.entry, e.host)
		}
		for _, m := range early.done {
			s.markDone(m)
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
	if hash != s.hash() {
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

// applyDone records that member has sent its deltas for topology hash. It
// reports whether the handover of the current topology just completed.
func (s *ownerState) applyDone(hash uint64, member string) bool {
	if hash != s.hash() {
		e := s.earlyFor(hash)
		e.done = append(e.done, member)
		return false
	}
	if s.complete {
		return false
	}
	s.markDone(member)
	return s.complete
}

func (s *ownerState) markDone(member string) {
	s.done[member] = true
	for _, m := range s.place.topo.Members {
		if !s.done[m.ID] {
			return
		}
	}
	s.complete = true
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
	return missing
}

func (s *ownerState) earlyFor(hash uint64) *earlyHandover {
	e := s.early[hash]
	if e == nil {
		if len(s.early) >= maxEarly {
			// Far more topologies than a healthy cluster goes through
			// between two of ours: these are stale.
			clear(s.early)
		}
		e = &earlyHandover{}
		s.early[hash] = e
	}
	return e
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
	for _, early := range s.early {
		early.entries = slices.DeleteFunc(early.entries, func(e hostedEntry) bool {
			return e.id == id && e.pid.Equal(pid)
		})
	}
}
