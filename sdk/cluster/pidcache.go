package cluster

import (
	"sync"

	"github.com/troupehq/troupe/sdk/actor"
)

// pidCacheShards spreads the cache over independently locked maps.
const pidCacheShards = 32

// pidCache remembers where activations live, so that a warm grain call
// goes straight to its activation. Entries are evicted when the call finds
// the activation gone, when its member leaves, and when it passivates here.
type pidCache struct {
	shards [pidCacheShards]pidShard
}

type pidShard struct {
	mu sync.RWMutex
	m  map[ClusterIdentity]*actor.PID
}

func newPIDCache() *pidCache {
	c := &pidCache{}
	for i := range c.shards {
		c.shards[i].m = make(map[ClusterIdentity]*actor.PID)
	}
	return c
}

func (c *pidCache) shard(id ClusterIdentity) *pidShard {
	return &c.shards[identityHash(id)%pidCacheShards]
}

func (c *pidCache) get(id ClusterIdentity) (*actor.PID, bool) {
	s := c.shard(id)
	s.mu.RLock()
	pid, ok := s.m[id]
	s.mu.RUnlock()
	return pid, ok
}

func (c *pidCache) put(id ClusterIdentity, pid *actor.PID) {
	s := c.shard(id)
	s.mu.Lock()
	s.m[id] = pid
	s.mu.Unlock()
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
	for i := range c.shards {
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
