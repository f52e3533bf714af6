package cluster

import (
	"context"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster/internal/clusterpb"
)

// OwnerOf returns id's owner in t, for the external tests.
func OwnerOf(t Topology, id ClusterIdentity) string {
	owner, _ := newPlacement(t).owner(id)
	return owner
}

// WithDefaults returns c with its defaults filled in, or why it is invalid.
func WithDefaults(c Config) (Config, error) { return c.withDefaults() }

// Remember makes c's PID cache hold pid for id, as a stale entry would.
func Remember(c *Cluster, id ClusterIdentity, pid *actor.PID) {
	c.cache.put(id, pid, func(string) bool { return true })
}

// Locate tells c where id's activation lives, as an owner's answer does.
func Locate(c *Cluster, id ClusterIdentity, pid *actor.PID) { c.remember(id, pid) }

// ActivationPID returns the PID the n-th activation of id on the member
// at address has.
func ActivationPID(address string, id ClusterIdentity, n uint64) *actor.PID {
	return actor.NewPID(address, identityName+"/"+grainName(id, n))
}

// ReportActivation makes owner's identity actor receive host's handover
// report of pid as id's activation, for owner's current topology: what a
// late or stale handover message would tell it.
func ReportActivation(owner *Cluster, host string, id ClusterIdentity, pid *actor.PID) {
	owner.sys.Send(owner.identity, &clusterpb.HandoverDelta{
		TopologyHash: owner.routing.Load().place.topo.Hash,
		MemberId:     host,
		Entries:      []*clusterpb.HandoverEntry{{Identity: wireIdentity(id), Pid: pid}},
	})
}

// Reroute hands c's rerouting of fire-and-forget messages the dead letter
// e, as its event stream would, and waits for the re-delivery it starts.
func Reroute(c *Cluster, e *actor.DeadLetterEvent) {
	c.reroute(e)
	c.workers.Wait()
}

// TimeOutHandover makes c's identity actor receive the handover timeout of
// the topology with the given epoch, as its timer would send it, and
// returns once the actor has handled it.
func TimeOutHandover(ctx context.Context, c *Cluster, epoch uint64) error {
	c.sys.Send(c.identity, handoverTimedOut{epoch: epoch})
	_, err := c.sys.Request(ctx, c.identity, &clusterpb.Expelled{}) // answered in turn
	return err
}
