package cluster

import (
	"sync"
)

// memberList turns the member sets the membership delivers into topologies:
// it keeps members by ID, never lets a member that left come back under
// the same ID, and reports each change once.
type memberList struct {
	mu       sync.Mutex
	topo     Topology
	departed map[string]bool
}

func newMemberList() *memberList {
	return &memberList{departed: make(map[string]bool)}
}

// update applies a member set. It returns the new topology, or false if the
// set did not change.
func (l *memberList) update(members []Member) (Topology, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
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
		l.departed[m.ID] = true
	}
	l.topo = Topology{Epoch: l.topo.Epoch + 1, Hash: hash, Members: sorted, Joined: joined, Left: left}
	return l.topo, true
}

// current returns the current topology.
func (l *memberList) current() Topology {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.topo
}
