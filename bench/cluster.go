package bench

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"sync"
	"sync/atomic"
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

// troupeCluster is an in-process Troupe cluster: members with their own
// actor systems and remotes on loopback, sharing an in-memory membership.
type troupeCluster struct {
	reg   *clustertest.Registry
	nodes []*troupeNode
}

type troupeNode struct {
	sys *actor.System
	r   *remote.Remote
	c   *cluster.Cluster
}

func startTroupeCluster(members int) (*troupeCluster, error) {
	tc := &troupeCluster{reg: clustertest.NewRegistry()}
	for range members {
		if _, err := tc.add(); err != nil {
			tc.stop()
			return nil, err
		}
	}
	return tc, tc.converge(members)
}

func (tc *troupeCluster) add() (*troupeNode, error) { return tc.start(true) }

// start starts a member, or a client if member is false.
func (tc *troupeCluster) start(member bool) (*troupeNode, error) {
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, err
	}
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
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
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

// converge waits until every member sees n members.
func (tc *troupeCluster) converge(n int) error {
	deadline := time.Now().Add(shutdownTimeout)
	for {
		ok := true
		for _, node := range tc.nodes {
			ok = ok && len(node.c.Topology().Members) == n
		}
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("troupe cluster did not converge to %d members", n)
		}
		time.Sleep(time.Millisecond)
	}
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

// TroupeClusterRequest measures sequential warm round trips from member 0
// to an echo grain activated on another member.
func TroupeClusterRequest(cfg ClusterConfig) (Latency, error) {
	tc, err := startTroupeCluster(cfg.Members)
	if err != nil {
		return Latency{}, err
	}
	defer tc.stop()
	caller := tc.nodes[0]
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	var id cluster.ClusterIdentity
	for i := 0; ; i++ {
		if i == 1000 {
			return Latency{}, errors.New("no grain landed on another member")
		}
		id = echoIdentity(fmt.Sprint("g", i))
		pid, err := caller.c.Get(ctx, id)
		if err != nil {
			return Latency{}, err
		}
		if pid.Address != caller.r.Address() {
			break
		}
	}
	ping := &benchpb.Ping{}
	samples := make([]time.Duration, 0, cfg.Requests)
	for i := range cfg.Warmup + cfg.Requests {
		start := time.Now()
		if _, err := caller.c.Request(ctx, id, ping); err != nil {
			return Latency{}, err
		}
		if i >= cfg.Warmup {
			samples = append(samples, time.Since(start))
		}
	}
	return summarize(samples), nil
}

// requestAll asks each identity once from c, from 2×NumCPU goroutines, and
// returns how long it took. Each call has requestTimeout.
func requestAll(c *cluster.Cluster, ids []cluster.ClusterIdentity) (time.Duration, error) {
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	ping := &benchpb.Ping{}
	for range 2 * runtime.NumCPU() {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(ids) {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
				_, err := c.Request(ctx, ids[i], ping)
				cancel()
				if err != nil {
					select {
					case errs <- err:
					default:
					}
					return
				}
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return 0, err
	default:
	}
	return time.Since(start), nil
}

func identities(prefix string, n int) []cluster.ClusterIdentity {
	ids := make([]cluster.ClusterIdentity, n)
	for i := range ids {
		ids[i] = echoIdentity(fmt.Sprint(prefix, i))
	}
	return ids
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
	return requestAll(tc.nodes[0].c, identities("a", cfg.Activations))
}

// TroupeClusterHandover measures how long a cluster with cfg.HandoverGrains
// active grains takes to restore full service when a member joins: from
// the start of the new member until every member sees it and a client that
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
	if err != nil {
		return 0, err
	}
	ids := identities("h", cfg.HandoverGrains)
	if _, err := requestAll(tc.nodes[0].c, ids); err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := tc.add(); err != nil {
		return 0, err
	}
	if err := tc.converge(cfg.Members + 1); err != nil {
		return 0, err
	}
	if _, err := requestAll(client.c, ids); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}
