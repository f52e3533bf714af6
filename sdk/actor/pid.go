package actor

import (
	"sync/atomic"
)

// processRef is the type of PID's unexported cache field, inserted into the
// generated struct by tools/cmd/pidfield. It is an alias so that the
// generated file needs no extra import.
type processRef = atomic.Pointer[procHandle]

// procHandle is what the registry stores for a process and what PIDs cache.
// Marking it dead invalidates every cached reference at once, so a PID that
// outlives its actor falls back to the registry and finds dead letters.
type procHandle struct {
	p    Process
	sys  *System
	dead atomic.Bool
}

// cached returns the process pid caches for sys, if the cache is valid.
func (pid *PID) cached(sys *System) (Process, bool) {
	if h := pid.ref.Load(); h != nil && h.sys == sys && !h.dead.Load() {
		return h.p, true
	}
	return nil, false
}

// NewPID returns a PID for the process id on the system at address.
func NewPID(address, id string) *PID {
	return &PID{Address: address, Id: id}
}

// Equal reports whether pid and other name the same process. Two nil PIDs
// are equal.
func (pid *PID) Equal(other *PID) bool {
	if pid == nil || other == nil {
		return pid == other
	}
	return pid.Id == other.Id && pid.Address == other.Address
}

// key returns a comparable form of the PID for use in maps.
func (pid *PID) key() pidKey { return pidKey{pid.Address, pid.Id} }

type pidKey struct{ address, id string }

// pidSet is a small set of PIDs keyed by address and id.
type pidSet map[pidKey]*PID

func (s *pidSet) add(pid *PID) {
	if *s == nil {
		*s = make(pidSet)
	}
	(*s)[pid.key()] = pid
}

// remove deletes pid and reports whether it was present.
func (s pidSet) remove(pid *PID) bool {
	k := pid.key()
	if _, ok := s[k]; !ok {
		return false
	}
	delete(s, k)
	return true
}

// has reports whether pid is present.
func (s pidSet) has(pid *PID) bool {
	_, ok := s[pid.key()]
	return ok
}

func (s pidSet) values() []*PID {
	out := make([]*PID, 0, len(s))
	for _, p := range s {
		out = append(out, p)
	}
	return out
}
