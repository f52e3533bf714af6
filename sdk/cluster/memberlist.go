package cluster

import (
	"sync"
)

// memberList turns the member sets the membership delivers into topologies:
// it keeps members by ID, does not let a member that left come back under
// the same ID, and reports each change once. It remembers the IDs of the
// last maxDeparted members that left; older ones are forgotten.
type memberList struct {
	mu          sync.Mutex
	topo        Topology
	departed    map[string]bool
	last        []Member // the last member set, refused members included
	order       []string // departed, longest gone first
	maxDeparted int
}

// newMemberList returns a member list that remembers maxDeparted (> 0)
// members that left.
func newMemberList(maxDeparted int) *memberList {
	return &memberList{departed: make(map[string]bool), maxDeparted: maxDeparted}
}

// update applies a member set. It returns the new topology, or false if the
// set did not change.
func (l *memberList) update(members []Member) (Topology, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.last = members
	live := make([]Member, 0, len(members))
	for _, m := range members {
		if !l.departed[m.ID] {
			live = append(live, m)
		}
	}
	sorted := normalize(live)
	hash := topologyHash(sorted)
	if l.topo.Epoch > 0 && hash == l.topo.Hash {
		return l.topo, false
	}
	joined, left := diff(l.topo.Members, sorted)
	for _, m := range left {
		l.depart(m.ID)
	}
	l.topo = Topology{Epoch: l.topo.Epoch + 1, Hash: hash, Members: sorted, Joined: joined, Left: left}
	return l.topo, true
}

// depart remembers that the member id left, forgetting the longest gone
// beyond maxDeparted.
func (l *memberList) depart(id string) {
	if l.departed[id] {
		return
	}
	if len(l.order) >= l.maxDeparted {
		delete(l.departed, l.order[0])
		l.order[0] = ""
		l.order = l.order[1:]
	}
	l.departed[id] = true
	l.order = append(l.order, id)
}

// refused returns the members of a member set that left before and are
// refused for it: the membership lists again an ID it dropped.
func (l *memberList) refused(members []Member) []Member {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Member
	for _, m := range members {
		if l.departed[m.ID] {
			out = append(out, m)
		}
	}
	return out
}

// listed reports whether the last member set lists the member id.
func (l *memberList) listed(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, m := range l.last {
		if m.ID == id {
			return true
		}
	}
	return false
}
