package cluster

import (
	"fmt"
	"testing"

	"github.com/troupehq/troupe/sdk/actor"
)

func TestPIDCacheKeepsAtMostItsSize(t *testing.T) {
	for _, size := range []int{1, 5, pidCacheShards, 100, 1000} {
		c := newPIDCache(size)
		for i := range 3*size + 10 {
			id := ClusterIdentity{Kind: "k", ID: fmt.Sprint(i)}
			pid := actor.NewPID("127.0.0.1:1", fmt.Sprint(i))
			c.put(id, pid, anywhere)
			if got, ok := c.get(id); !ok || !got.Equal(pid) {
				t.Fatalf("size %d: the entry just stored is %v, %v", size, got, ok)
			}
			if n := entries(c); n > size {
				t.Fatalf("size %d: %d entries", size, n)
			}
		}
		// Storing an identity the cache has replaces its entry and forgets
		// no other.
		for i := range 3*size + 10 {
			id := ClusterIdentity{Kind: "k", ID: fmt.Sprint(i)}
			if _, ok := c.get(id); !ok {
				continue
			}
			n := entries(c)
			pid := actor.NewPID("127.0.0.1:2", "moved")
			c.put(id, pid, anywhere)
			if got, _ := c.get(id); !got.Equal(pid) || entries(c) != n {
				t.Fatalf("size %d: replacing %v gave %v and %d entries (had %d)", size, id, got, entries(c), n)
			}
		}
	}
}

// anywhere lets every address host activations.
func anywhere(string) bool { return true }

// The cache does not store an activation whose address live refuses (a
// member that left).
func TestPIDCacheStoresOnlyLiveActivations(t *testing.T) {
	c := newPIDCache(10)
	id := ClusterIdentity{Kind: "k", ID: "x"}
	c.put(id, actor.NewPID("127.0.0.1:1", "x"), func(address string) bool { return address != "127.0.0.1:1" })
	if pid, ok := c.get(id); ok {
		t.Fatalf("the cache stored %v, on an address that left", pid)
	}
	c.put(id, actor.NewPID("127.0.0.1:2", "x"), func(address string) bool { return address != "127.0.0.1:1" })
	if _, ok := c.get(id); !ok {
		t.Fatal("the cache refused a live address")
	}
}

// entries returns the number of entries in c (used by one goroutine).
func entries(c *pidCache) (n int) {
	for i := range c.n {
		n += len(c.shards[i].m)
	}
	return n
}
