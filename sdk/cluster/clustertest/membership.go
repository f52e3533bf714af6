// Package clustertest runs real clusters inside one test process: an
// in-memory Membership, and a fixture that starts members with real actor
// systems and real gRPC on loopback.
package clustertest

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/troupehq/troupe/sdk/cluster"
)

// Registry is an in-memory source of truth for membership, shared by the
// members of one test cluster. It is safe for concurrent use.
type Registry struct {
	mu      sync.Mutex
	members map[string]cluster.Member
	subs    map[*subscriber]struct{}
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{members: make(map[string]cluster.Member), subs: make(map[*subscriber]struct{})}
}

// Membership returns a cluster.Membership backed by r, for one member.
func (r *Registry) Membership() cluster.Membership { return &membership{r: r} }

// Members returns the registered members, sorted by ID.
func (r *Registry) Members() []cluster.Member {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.snapshot()
}

func (r *Registry) snapshot() []cluster.Member {
	out := make([]cluster.Member, 0, len(r.members))
	for _, m := range r.members {
		out = append(out, m)
	}
	slices.SortFunc(out, func(a, b cluster.Member) int { return cmp.Compare(a.ID, b.ID) })
	return out
}

// Kill removes a member as a failure detector would when a member dies
// without leaving: the others see it gone, it is not told.
func (r *Registry) Kill(memberID string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.members, memberID)
	r.notify()
}

// Pause holds back the member sets for the members registered as
// memberID, as for a process paused (a long GC, a frozen VM): they see
// nothing of what happens until resume is called, and then only the
// latest set.
func (r *Registry) Pause(memberID string) (resume func()) {
	r.mu.Lock()
	var held []*subscriber
	for s := range r.subs {
		if s.id == memberID {
			s.hold(true)
			held = append(held, s)
		}
	}
	r.mu.Unlock()
	return func() {
		for _, s := range held {
			s.hold(false)
		}
	}
}

// Relist registers m again after Kill, as a failure detector does when
// the health checks of a member it declared dead pass again.
func (r *Registry) Relist(m cluster.Member) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.members[m.ID] = m
	r.notify()
}

func (r *Registry) notify() {
	set := r.snapshot()
	for s := range r.subs {
		s.deliver(set)
	}
}

// subscriber delivers the latest member set to one member, on its own
// goroutine, coalescing sets that arrive while one is being handled.
type subscriber struct {
	id       string // the member's ID
	onChange func([]cluster.Member)
	mu       sync.Mutex
	latest   []cluster.Member
	pending  bool
	held     bool // Pause: keep the latest set until resumed
	wake     chan struct{}
	done     chan struct{}
	stopped  chan struct{}
}

func (s *subscriber) deliver(set []cluster.Member) {
	s.mu.Lock()
	s.latest, s.pending = set, true
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// hold pauses or resumes the deliveries.
func (s *subscriber) hold(held bool) {
	s.mu.Lock()
	s.held = held
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscriber) run() {
	defer close(s.stopped)
	for {
		select {
		case <-s.wake:
		case <-s.done:
			return
		}
		s.mu.Lock()
		set, pending := s.latest, s.pending && !s.held
		if pending {
			s.pending = false
		}
		s.mu.Unlock()
		if pending {
			s.onChange(set)
		}
	}
}

// membership is one member's view of a Registry.
type membership struct {
	r    *Registry
	self cluster.Member
	sub  *subscriber
	reg  bool
	// crashed makes Leave stop the deliveries only, as for a process
	// that died: the member stays registered (Fixture.Crash).
	crashed atomic.Bool
}

func (m *membership) Join(_ context.Context, self cluster.Member, asClient bool, onChange func([]cluster.Member)) error {
	if m.sub != nil {
		return errors.New("clustertest: already joined")
	}
	m.self = self
	m.sub = &subscriber{id: self.ID, onChange: onChange, wake: make(chan struct{}, 1), done: make(chan struct{}), stopped: make(chan struct{})}
	go m.sub.run()
	m.r.mu.Lock()
	defer m.r.mu.Unlock()
	m.r.subs[m.sub] = struct{}{}
	if !asClient {
		m.r.members[self.ID] = self
		m.reg = true
		m.r.notify()
	} else {
		m.sub.deliver(m.r.snapshot())
	}
	return nil
}

func (m *membership) Leave(context.Context) error {
	if m.sub == nil {
		return nil
	}
	m.r.mu.Lock()
	delete(m.r.subs, m.sub)
	if m.reg && !m.crashed.Load() {
		delete(m.r.members, m.self.ID)
		m.r.notify()
	}
	m.r.mu.Unlock()
	close(m.sub.done)
	<-m.sub.stopped
	m.sub = nil
	return nil
}
