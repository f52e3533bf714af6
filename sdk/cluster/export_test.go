package cluster

import "github.com/troupehq/troupe/sdk/actor"

// OwnerOf returns id's owner in t, for the external tests.
func OwnerOf(t Topology, id ClusterIdentity) string {
	owner, _ := newPlacement(t).owner(id)
	return owner
}

// WithDefaults returns c with its defaults filled in, or why it is invalid.
func WithDefaults(c Config) (Config, error) { return c.withDefaults() }

// Remember makes c's PID cache hold pid for id, as a stale entry would.
func Remember(c *Cluster, id ClusterIdentity, pid *actor.PID) { c.cache.put(id, pid) }
