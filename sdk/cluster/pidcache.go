package cluster

import (
	"errors"
	"sync"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster/internal/clusterpb"
)

// pidCacheShards spreads the cache over independently locked maps.
const pidCacheShards = 32

// pidCache remembers where activations live, so that a warm grain call
// goes straight to its activation. Entries are evicted when the call finds
// the activation gone, when its member leaves, and when it passivates here.
// It holds at most its size's entries: each shard takes an even part of
// it, and a shard that is full forgets an arbitrary entry to store a new
// one (the cache is a hint: a call that misses goes through the owner).
type pidCache struct {
	shards [pidCacheShards]pidShard
	n      uint64 // shards in use: fewer than pidCacheShards for a small size
}

type pidShard struct {
	mu       sync.RWMutex
	m        map[ClusterIdentity]*actor.PID
	capacity int
}

// newPIDCache returns a cache of at most size (> 0) entries.
func newPIDCache(size int) *pidCache {
	n := min(size, pidCacheShards)
	c := &pidCache{n: uint64(n)}
	for i := range n {
		s := &c.shards[i]
		s.m = make(map[ClusterIdentity]*actor.PID)
		s.capacity = size / n
		if i < size%n {
			s.capacity++
		}
	}
	return c
}

func (c *pidCache) shard(id ClusterIdentity) *pidShard {
	return &c.shards[identityHash(id)%c.n]
}

func (c *pidCache) get(id ClusterIdentity) (*actor.PID, bool) {
	s := c.shard(id)
	s.mu.RLock()
	pid, ok := s.m[id]
	s.mu.RUnlock()
	return pid, ok
}

// put stores id's activation if live reports its address still hosts
// activations, forgetting another entry of its shard if the shard is full.
// live is asked under the shard's lock, which evictAddresses takes too: an
// activation whose member is dropped from live before its entries are
// evicted is either refused here or evicted there, never left behind.
func (c *pidCache) put(id ClusterIdentity, pid *actor.PID, live func(address string) bool) {
	s := c.shard(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	if !live(pid.Address) {
		return
	}
	if _, ok := s.m[id]; !ok && len(s.m) >= s.capacity {
		for other := range s.m { // map order: an arbitrary entry
			delete(s.m, other)
			break
		}
	}
	s.m[id] = pid
}

// evict removes id's entry if it still is pid.
func (c *pidCache) evict(id ClusterIdentity, pid *actor.PID) {
	s := c.shard(id)
	s.mu.Lock()
	if cur, ok := s.m[id]; ok && cur.Equal(pid) {
		delete(s.m, id)
	}
	s.mu.Unlock()
}

// evictAddresses removes every entry whose activation lives at one of
// addresses.
func (c *pidCache) evictAddresses(addresses map[string]bool) {
	for i := range c.n {
		s := &c.shards[i]
		s.mu.Lock()
		for id, pid := range s.m {
			if addresses[pid.Address] {
				delete(s.m, id)
			}
		}
		s.mu.Unlock()
	}
}

// cacheName is the name of every member's (and client's) cache process,
// which owners tell where the activations of its calls live.
const cacheName = "$cluster-cache"

var errNotCacheNotice = errors.New("cluster: the cache process takes only ActivationLocated")

// cacheProcess fills the PID cache from owners' ActivationLocated notices.
// It is a plain process, not an actor: a notice is applied on the
// goroutine that delivers it, with no mailbox in between.
type cacheProcess struct{ c *Cluster }

func (p cacheProcess) SendUserMessage(pid *actor.PID, item any) {
	msg, _, _ := actor.Unwrap(item)
	loc, ok := msg.(*clusterpb.ActivationLocated)
	if !ok || loc.GetIdentity() == nil || loc.GetPid() == nil {
		p.c.sys.DeadLetter(pid, item, errNotCacheNotice)
		return
	}
	p.c.remember(identityOf(loc.GetIdentity()), loc.GetPid())
}

func (cacheProcess) SendSystemMessage(*actor.PID, any) {}

func (cacheProcess) Stop(*actor.PID) {}
