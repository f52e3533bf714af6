package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/troupehq/troupe/bench/internal/benchpb"
	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/cluster/clustertest"
	"github.com/troupehq/troupe/sdk/remote"
)

// troupeEchoGrain answers a ping request with a pong.
func troupeEchoGrain(c actor.Context) {
	if _, ok := c.Message().(*benchpb.Ping); ok {
		c.Respond(&benchpb.Pong{})
	}
}

// troupeCluster is an in-process Troupe cluster: members (and clients) with
// their own actor systems and remotes on loopback, sharing an in-memory
// membership.
type troupeCluster struct {
	reg   *clustertest.Registry
	nodes []*troupeNode
	// changed receives a value (without blocking) whenever a node publishes
	// a new topology.
	changed chan struct{}
}

type troupeNode struct {
	sys *actor.System
	r   *remote.Remote
	c   *cluster.Cluster
}

// startTroupeCluster starts members members and waits until every one sees
// them all. On error it has shut down whatever it started.
func startTroupeCluster(members int) (*troupeCluster, error) {
	tc := &troupeCluster{reg: clustertest.NewRegistry(), changed: make(chan struct{}, 1)}
	for range members {
		if _, err := tc.add(); err != nil {
			tc.stop()
			return nil, err
		}
	}
	if err := tc.converge(members); err != nil {
		tc.stop()
		return nil, err
	}
	return tc, nil
}

func (tc *troupeCluster) add() (*troupeNode, error) { return tc.start(true) }

// start starts a member, or a client if member is false.
func (tc *troupeCluster) start(member bool) (*troupeNode, error) {
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
	actor.Subscribe(sys.EventStream(), func(cluster.Topology) { notify(tc.changed) })
	r, err := remote.New(sys, remote.Config{})
	if err == nil {
		err = r.Start()
	}
	if err != nil {
		shutdown(sys)
		return nil, err
	}
	cfg := cluster.Config{Membership: tc.reg.Membership()}
	if member {
		cfg.Kinds = []cluster.Kind{{Name: echoKind, Props: actor.PropsFromFunc(troupeEchoGrain)}}
	}
	c, err := cluster.New(sys, r, cfg)
	n := &troupeNode{sys: sys, r: r, c: c}
	if err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), clusterConvergeTimeout)
		err = c.Start(ctx)
		cancel()
	}
	if err != nil {
		r.Close()
		shutdown(sys)
		return nil, err
	}
	tc.nodes = append(tc.nodes, n)
	return n, nil
}

// converge waits until every node, clients included, sees n members. It
// wakes on the nodes' topology events, not on a timer.
func (tc *troupeCluster) converge(n int) error {
	return awaitCluster(tc.changed, func() (bool, error) {
		for _, node := range tc.nodes {
			if len(node.c.Topology().Members) != n {
				return false, nil
			}
		}
		return true, nil
	}, func() error {
		sizes := make([]int, len(tc.nodes))
		for i, node := range tc.nodes {
			sizes[i] = len(node.c.Topology().Members)
		}
		return fmt.Errorf("troupe cluster did not converge on %d members within %v: nodes see %v", n, clusterConvergeTimeout, sizes)
	})
}

func (tc *troupeCluster) stop() {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	for _, n := range tc.nodes {
		_ = n.c.Shutdown(ctx)
		_ = n.sys.Shutdown(ctx)
	}
}

func echoIdentity(id string) cluster.ClusterIdentity {
	return cluster.ClusterIdentity{Kind: echoKind, ID: id}
}

// identities returns the echo grains prefix0 … prefix(n-1).
func identities(prefix string, n int) []cluster.ClusterIdentity {
	ids := make([]cluster.ClusterIdentity, n)
	for i, name := range identityNames(prefix, n) {
		ids[i] = echoIdentity(name)
	}
	return ids
}

// remoteIdentityCandidates is how many identities the request scenarios try
// to find one that lives on a member other than the caller.
const remoteIdentityCandidates = 1_000

// TroupeClusterRequest measures sequential warm round trips from member 0
// to an echo grain activated on another member, each with a deadline of its
// own, after cfg.Warmup unmeasured ones.
func TroupeClusterRequest(cfg ClusterConfig) (Latency, error) {
	tc, err := startTroupeCluster(cfg.Members)
	if err != nil {
		return Latency{}, err
	}
	defer tc.stop()
	caller := tc.nodes[0]
	id, err := troupeRemoteIdentity(caller)
	if err != nil {
		return Latency{}, err
	}
	ping := &benchpb.Ping{}
	return sampleLatency("cluster-request/troupe", cfg.Warmup, cfg.Requests, func() error {
		return troupeGrainRequest(caller.c, id, ping)
	})
}

// troupeRemoteIdentity returns an echo grain whose activation lives on a
// member other than caller; finding it activates it.
func troupeRemoteIdentity(caller *troupeNode) (cluster.ClusterIdentity, error) {
	for _, id := range identities("g", remoteIdentityCandidates) {
		var pid *actor.PID
		err := withRequestTimeout(func(ctx context.Context) (err error) {
			pid, err = caller.c.Get(ctx, id)
			return err
		})
		if err != nil {
			return cluster.ClusterIdentity{}, err
		}
		if pid.Address != caller.r.Address() {
			return id, nil
		}
	}
	return cluster.ClusterIdentity{}, errors.New("troupe cluster: every identity tried lives on member 0")
}

// troupeGrainRequest sends ping to the echo grain id through c, with a
// deadline of its own, and waits for the pong.
func troupeGrainRequest(c *cluster.Cluster, id cluster.ClusterIdentity, ping *benchpb.Ping) error {
	return withRequestTimeout(func(ctx context.Context) error {
		_, err := c.Request(ctx, id, ping)
		return err
	})
}

// requestAll asks each of ids once through c, from 2×NumCPU goroutines,
// and returns after the last answer or the first failure.
func requestAll(c *cluster.Cluster, ids []cluster.ClusterIdentity) error {
	ping := &benchpb.Ping{}
	return concurrently(len(ids), func(i int) error { return troupeGrainRequest(c, ids[i], ping) })
}

// TroupeClusterActivations measures how long member 0 takes to activate
// cfg.Activations new identities, one request each, from 2×NumCPU
// concurrent callers.
func TroupeClusterActivations(cfg ClusterConfig) (time.Duration, error) {
	tc, err := startTroupeCluster(cfg.Members)
	if err != nil {
		return 0, err
	}
	defer tc.stop()
	ids := identities("a", cfg.Activations)
	return timed(func() error { return requestAll(tc.nodes[0].c, ids) })
}

// TroupeClusterHandover measures how long a cluster with cfg.HandoverGrains
// active grains takes to restore full service when a member joins: from
// the start of the new member until every node sees it and a client that
// has never called (so every call goes through the grain's owner) has had
// an answer from every grain. Ownership of about a quarter of the grains
// moves to the new member, which learns their activations through the
// handover: none is activated twice.
func TroupeClusterHandover(cfg ClusterConfig) (time.Duration, error) {
	tc, err := startTroupeCluster(cfg.Members)
	if err != nil {
		return 0, err
	}
	defer tc.stop()
	client, err := tc.start(false)
	if err == nil {
		err = tc.converge(cfg.Members)
	}
	if err != nil {
		return 0, err
	}
	ids := identities("h", cfg.HandoverGrains)
	if err := requestAll(tc.nodes[0].c, ids); err != nil {
		return 0, err
	}
	return timed(func() error {
		if _, err := tc.add(); err != nil {
			return err
		}
		if err := tc.converge(cfg.Members + 1); err != nil {
			return err
		}
		return requestAll(client.c, ids)
	})
}
