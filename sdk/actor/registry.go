package actor

import (
	"errors"
	"fmt"
	"hash/maphash"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// LocalAddress is the address of a system that is not reachable over the
// network. PIDs with this address are always resolved locally.
const LocalAddress = "nonhost"

// registryShards spreads the registry over independently locked maps so that
// spawns and stops on different cores rarely contend. A power of two.
const registryShards = 64

// AddressResolver returns the process that forwards to PIDs at a non-local
// address (the remote transport registers one), or false if it does not
// handle that address. The registry asks once per address and caches the
// answer, so the process must stay valid for as long as the system lives.
type AddressResolver func(address string) (Process, bool)

// Registry maps process ids to processes. Sends do not consult it on the hot
// path: a PID caches its process after the first lookup.
type Registry struct {
	sys       *System
	address   atomic.Pointer[string]
	seq       atomic.Uint64
	seed      maphash.Seed
	resolvers atomic.Pointer[[]AddressResolver]
	resolveMu sync.Mutex
	remotes   sync.Map // address → *procHandle of the resolver's process
	shards    [registryShards]registryShard
}

type registryShard struct {
	mu sync.RWMutex
	m  map[string]*procHandle
	_  [32]byte // keep shards on separate cache lines
}

func newRegistry(sys *System) *Registry {
	r := &Registry{sys: sys, seed: maphash.MakeSeed()}
	// Generated ids count on from the wall clock in nanoseconds, so that a
	// system started after another (a process restarted at the same
	// address) never makes an id the other made: it would have had to make
	// more ids than nanoseconds passed. A message for an actor of the old
	// process, or an answer for one of its futures, then fails as a dead
	// letter instead of reaching whichever new actor took the same id.
	r.seq.Store(uint64(time.Now().UnixNano()))
	addr := LocalAddress
	r.address.Store(&addr)
	for i := range r.shards {
		r.shards[i].m = make(map[string]*procHandle)
	}
	return r
}

// Address returns the address of this system: LocalAddress until a
// transport sets its own.
func (r *Registry) Address() string { return *r.address.Load() }

// SetAddress sets the address that new PIDs carry and that is resolved
// locally. Transports call it once, before the system is used over the
// network.
func (r *Registry) SetAddress(address string) { r.address.Store(&address) }

// RegisterResolver adds a resolver for PIDs whose address is not local.
func (r *Registry) RegisterResolver(res AddressResolver) {
	r.resolveMu.Lock()
	defer r.resolveMu.Unlock()
	var list []AddressResolver
	if old := r.resolvers.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, res)
	r.resolvers.Store(&list)
}

// NextID returns a fresh process id: "$" and base-36 digits, never the
// same twice in this system, nor one a system started before it made (the
// digits count on from the wall clock in nanoseconds). A name given to SpawnNamed may take it first;
// the system's own spawns then retry with the next (see freshID).
func (r *Registry) NextID() string { return r.nextID("$") }

// FutureIDPrefix starts the id of every future, and of no other id that
// NextID makes ('~' is not a base-36 digit). A future takes one reply and
// is gone: a remote caches nothing about the ids that start so.
const FutureIDPrefix = "$~"

// IsFutureID reports whether id starts as a future's id does.
func IsFutureID(id string) bool { return strings.HasPrefix(id, FutureIDPrefix) }

func (r *Registry) nextID(prefix string) string {
	var b [16]byte // prefix and up to 13 base-36 digits
	return string(strconv.AppendUint(append(b[:0], prefix...), r.seq.Add(1), 36))
}

// freshID calls add with generated ids (made by next) until one is not
// taken: a user may have given a process a name that looks generated.
// Each try takes a new number, so it ends.
func freshID(next func() string, add func(id string) (*PID, error)) (*PID, error) {
	for {
		pid, err := add(next())
		if !errors.Is(err, ErrNameExists) {
			return pid, err
		}
	}
}

func (r *Registry) shard(id string) *registryShard {
	return &r.shards[maphash.String(r.seed, id)&(registryShards-1)]
}

// Add registers p under id and returns its PID. It fails with ErrNameExists
// if id is taken.
func (r *Registry) Add(id string, p Process) (*PID, error) {
	return r.add(id, &procHandle{p: p, sys: r.sys})
}

func (r *Registry) add(id string, h *procHandle) (*PID, error) {
	pid := r.pidOf(id, h)
	if err := r.insert(pid, h); err != nil {
		return nil, err
	}
	return pid, nil
}

// pidOf returns the PID h will have under id, its process cached.
func (r *Registry) pidOf(id string, h *procHandle) *PID {
	pid := &PID{Address: r.Address(), Id: id}
	pid.ref.Store(h)
	return pid
}

// insert registers h under pid's id, unless the id is taken.
func (r *Registry) insert(pid *PID, h *procHandle) error {
	s := r.shard(pid.Id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.m[pid.Id]; taken {
		return fmt.Errorf("%w: %q", ErrNameExists, pid.Id)
	}
	s.m[pid.Id] = h
	return nil
}

// Remove unregisters the process of pid. Messages sent to pid afterwards go
// to dead letters.
func (r *Registry) Remove(pid *PID) {
	s := r.shard(pid.Id)
	s.mu.Lock()
	h, ok := s.m[pid.Id]
	delete(s.m, pid.Id)
	s.mu.Unlock()
	if ok {
		h.dead.Store(true)
	}
}

// Get returns the local process registered under id.
func (r *Registry) Get(id string) (Process, bool) {
	h, ok := r.lookup(id)
	if !ok {
		return nil, false
	}
	return h.p, true
}

func (r *Registry) lookup(id string) (*procHandle, bool) {
	s := r.shard(id)
	s.mu.RLock()
	h, ok := s.m[id]
	s.mu.RUnlock()
	return h, ok
}

// Count returns the number of registered processes.
func (r *Registry) Count() int {
	n := 0
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		n += len(s.m)
		s.mu.RUnlock()
	}
	return n
}

// each calls fn for every registered process (a snapshot per shard).
func (r *Registry) each(fn func(id string, p Process)) {
	for i := range r.shards {
		s := &r.shards[i]
		s.mu.RLock()
		type entry struct {
			id string
			p  Process
		}
		list := make([]entry, 0, len(s.m))
		for id, h := range s.m {
			list = append(list, entry{id, h.p})
		}
		s.mu.RUnlock()
		for _, e := range list {
			fn(e.id, e.p)
		}
	}
}

// remote returns the handle of the process serving address, asking the
// resolvers the first time; nil if none serves it.
func (r *Registry) remote(address string) *procHandle {
	if h, ok := r.remotes.Load(address); ok {
		return h.(*procHandle)
	}
	list := r.resolvers.Load()
	if list == nil {
		return nil
	}
	for _, res := range *list {
		if p, ok := res(address); ok {
			h, _ := r.remotes.LoadOrStore(address, &procHandle{p: p, sys: r.sys})
			return h.(*procHandle)
		}
	}
	return nil
}

// isLocal reports whether address names this system.
func (r *Registry) isLocal(address string) bool {
	return address == LocalAddress || address == r.Address()
}

// resolve returns the process for pid: from the PID's cache when it is
// valid, else from the registry (then cached) or an address resolver, else
// dead letters.
func (r *Registry) resolve(pid *PID) Process {
	if p, ok := pid.cached(r.sys); ok {
		return p
	}
	return r.resolveSlow(pid)
}

func (r *Registry) resolveSlow(pid *PID) Process {
	if !r.isLocal(pid.Address) {
		h := r.remote(pid.Address)
		if h == nil {
			return r.sys.deadLetters
		}
		pid.ref.Store(h)
		return h.p
	}
	h, ok := r.lookup(pid.Id)
	if !ok {
		return r.sys.deadLetters
	}
	pid.ref.Store(h)
	return h.p
}
