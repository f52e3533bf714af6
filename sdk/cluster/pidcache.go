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
	if p.c.isMember(loc.GetPid().Address) { // not a member that left meanwhile
		p.c.cache.put(identityOf(loc.GetIdentity()), loc.GetPid())
	}
}

func (cacheProcess) SendSystemMessage(*actor.PID, any) {}

func (cacheProcess) Stop(*actor.PID) {}
