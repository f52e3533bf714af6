package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"
	"github.com/asynkron/protoactor-go/cluster"
	"github.com/asynkron/protoactor-go/cluster/clusterproviders/test"
	"github.com/asynkron/protoactor-go/cluster/identitylookup/disthash"
	"github.com/asynkron/protoactor-go/eventstream"
	premote "github.com/asynkron/protoactor-go/remote"

	"github.com/troupehq/troupe/bench/internal/benchpb"
)

// ClusterConfig is the shape of the cluster scenarios.
type ClusterConfig struct {
	// Members is the size of the in-process cluster (3).
	Members int
	// Requests and Warmup are the sequential warm grain round trips of the
	// latency scenario, to a grain that lives on another member.
	Requests, Warmup int
	// Activations is the number of new identities activated in the
	// activation-rate scenario.
	Activations int
	// HandoverGrains is the number of active grains when a member joins in
	// the handover scenario.
	HandoverGrains int
}

// DefaultCluster is the shape of record.
func DefaultCluster() ClusterConfig {
	return ClusterConfig{Members: 3, Requests: 20_000, Warmup: 1_000, Activations: 100_000, HandoverGrains: 100_000}
}

// protoClusterName names the protoactor-go cluster of the scenarios; each
// scenario has its own in-memory agent, so clusters never see each other.
const protoClusterName = "bench"

// ProtoClusterRequest measures sequential request/response round trips
// from member 0 of a protoactor-go cluster to an echo grain activated on
// another member, after cfg.Warmup unmeasured ones.
func ProtoClusterRequest(cfg ClusterConfig) (lat Latency, err error) {
	pc, err := startProtoCluster(cfg.Members)
	if err != nil {
		return Latency{}, err
	}
	defer func() { err = errors.Join(err, pc.shutdown()) }()
	c0 := pc.members[0].c
	id, err := protoRemoteIdentity(c0)
	if err != nil {
		return Latency{}, err
	}
	ping := &benchpb.Ping{}
	return sampleLatency("cluster-request/protoactor", cfg.Warmup, cfg.Requests, func() error { return protoGrainRequest(c0, id, ping) })
}

// ProtoClusterActivations measures how long member 0 of a protoactor-go
// cluster takes to activate cfg.Activations new identities, one request
// each, from 2×NumCPU concurrent callers.
func ProtoClusterActivations(cfg ClusterConfig) (elapsed time.Duration, err error) {
	pc, err := startProtoCluster(cfg.Members)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, pc.shutdown()) }()
	ids := identityNames("a", cfg.Activations)
	return timed(func() error { return protoRequestAll(pc.members[0].c, ids) })
}

// ProtoClusterHandover measures how long a protoactor-go cluster with
// cfg.HandoverGrains active grains takes to restore full service when a
// member joins: from the start of the new member until every node sees it
// and a cluster client that has never called (an empty PID cache, so every
// call asks the grain's owner first, as Troupe's client does) has had an
// answer from every grain (2×NumCPU concurrent callers). Grains whose
// owner changed are re-activated on the new member by the first request.
//
// The figure does not include the fixed one-second sleep at the end of
// protoactor-go's Cluster.StartMember: the new member is registered and
// serving before it, so the timer runs while StartMember sleeps. It does
// include protoactor-go losing requests in the handover: a request that
// reaches an old activation after its placement actor has told it to stop
// gets no answer, and is sent again after protoAttemptTimeout.
func ProtoClusterHandover(cfg ClusterConfig) (elapsed time.Duration, err error) {
	pc, err := startProtoCluster(cfg.Members)
	if err != nil {
		return 0, err
	}
	defer func() { err = errors.Join(err, pc.shutdown()) }()
	client, err := pc.start(true)
	if err == nil {
		err = client.waitStarted()
	}
	if err != nil {
		return 0, err
	}
	ids := identityNames("h", cfg.HandoverGrains)
	if err := protoRequestAll(pc.members[0].c, ids); err != nil {
		return 0, err
	}
	elapsed, err = timed(func() error {
		if _, err := pc.start(false); err != nil {
			return err
		}
		return protoRequestAll(client.c, ids)
	})
	if err != nil {
		return 0, err
	}
	// Let the new member's StartMember finish before the deferred shutdown
	// (shutdown would wait for it too, but this reports a failure first).
	if err := pc.members[len(pc.members)-1].waitStarted(); err != nil {
		return 0, err
	}
	return elapsed, nil
}

// protoEchoGrain is the cluster kind echoKind: it answers a ping request
// with a pong.
type protoEchoGrain struct{}

func (protoEchoGrain) Receive(c pactor.Context) {
	if _, ok := c.Message().(*benchpb.Ping); ok {
		c.Respond(&benchpb.Pong{})
	}
}

// protoMember is one member or client of an in-process protoactor-go
// cluster.
type protoMember struct {
	c      *cluster.Cluster
	client bool
	sub    *eventstream.Subscription
	// size is the number of members in the last topology this node saw.
	size atomic.Int32
	// started is closed when StartMember (StartClient) has returned, or
	// panicked: then startErr says why.
	started  chan struct{}
	startErr error
}

// waitStarted waits, bounded, until StartMember (StartClient) has
// returned, and returns its failure.
func (m *protoMember) waitStarted() error {
	if !m.awaitStarted() {
		return fmt.Errorf("protoactor cluster member %s did not start within %v", m.c.ActorSystem.ID, clusterConvergeTimeout)
	}
	return m.startErr
}

// awaitStarted waits, bounded, until StartMember (StartClient) has returned
// or panicked, and reports whether it has.
func (m *protoMember) awaitStarted() bool {
	select {
	case <-m.started:
		return true
	case <-time.After(clusterConvergeTimeout):
		return false
	}
}

// stop shuts a member down gracefully (protoactor-go's graceful shutdown
// sleeps two seconds for ownership transfer). A client's system and remote
// are shut down directly: protoactor-go's Cluster.Shutdown panics on a
// client, whose gossiper (never started) has no log throttle.
func (m *protoMember) stop() {
	if !m.client {
		m.c.Shutdown(true)
		return
	}
	m.c.ActorSystem.Shutdown()
	m.c.Remote.Shutdown(false)
}

// protoCluster is an in-process protoactor-go cluster: every member (and
// client) has its own actor system and remote on a loopback port, all share
// one in-memory test provider agent, and identities are placed by disthash.
type protoCluster struct {
	agent   *test.InMemAgent
	members []*protoMember
	// client is the cluster client, if one was started.
	client *protoMember
	// changed receives a value (without blocking) whenever a node sees a new
	// topology or a start returns.
	changed chan struct{}
}

// startProtoCluster starts n members and waits until every member sees all
// n and every StartMember has returned. On error it has shut down whatever
// it started.
func startProtoCluster(n int) (*protoCluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("protoactor cluster: %d members", n)
	}
	pc := &protoCluster{agent: test.NewInMemAgent(), changed: make(chan struct{}, 1)}
	for range n {
		if _, err := pc.start(false); err != nil {
			return nil, errors.Join(err, pc.shutdown())
		}
	}
	for _, m := range pc.members {
		if err := m.waitStarted(); err != nil {
			return nil, errors.Join(err, pc.shutdown())
		}
	}
	return pc, nil
}

// nodes returns the members and the client.
func (pc *protoCluster) nodes() []*protoMember {
	if pc.client == nil {
		return pc.members
	}
	return append(slices.Clip(pc.members), pc.client)
}

// start starts one more member, or the client (at most one) if client is
// true, and waits until every node, the new one included, sees all members.
// It does not wait for a new member's StartMember to return: that ends with
// a fixed one-second sleep after the member has registered with the
// provider.
//
// Nodes start one at a time: the test provider hands each node the agent's
// service list from inside the registering call, so two concurrent
// registrations could let a stale list arrive last, and a member missing
// from a topology is blocked for good.
func (pc *protoCluster) start(client bool) (*protoMember, error) {
	if client && pc.client != nil {
		return nil, errors.New("protoactor cluster: a second client")
	}
	sys := newProtoSystem()
	m := &protoMember{client: client, started: make(chan struct{})}
	// The topology subscription is made just before the node registers with
	// (or subscribes to) the provider, after the identity lookup's own:
	// subscribers run in order, so a node counts as converged only once its
	// disthash placement has the new topology too.
	provider := &protoProvider{Provider: test.NewTestProvider(pc.agent), agent: pc.agent, beforeStart: func(c *cluster.Cluster) {
		m.sub = c.ActorSystem.EventStream.Subscribe(func(evt any) {
			if t, ok := evt.(*cluster.ClusterTopology); ok {
				m.size.Store(int32(len(t.Members)))
				notify(pc.changed)
			}
		})
	}}
	cfg := cluster.Configure(protoClusterName, provider, disthash.New(),
		// Port 0: the remote listens on a free port chosen by the kernel and
		// advertises the address it got.
		premote.Configure("127.0.0.1", 0),
		cluster.WithKinds(cluster.NewKind(echoKind, pactor.PropsFromProducer(func() pactor.Actor { return protoEchoGrain{} }))),
	)
	m.c = cluster.New(sys, cfg)
	if client {
		pc.client = m
	} else {
		pc.members = append(pc.members, m)
	}
	go func() {
		// Wake converge once started is closed and startErr set.
		defer notify(pc.changed)
		defer close(m.started)
		defer func() {
			if r := recover(); r != nil {
				m.startErr = fmt.Errorf("protoactor cluster node did not start: %v", r)
			}
		}()
		if client {
			m.c.StartClient()
		} else {
			m.c.StartMember()
		}
	}()
	return m, pc.converge(m)
}

// protoProvider is the in-memory test provider with a hook run when a node
// starts, just before it registers (a member) or subscribes (a client).
type protoProvider struct {
	*test.Provider
	agent       *test.InMemAgent
	beforeStart func(*cluster.Cluster)
}

// StartMember runs the hook, then registers the member.
func (p *protoProvider) StartMember(c *cluster.Cluster) error {
	p.beforeStart(c)
	return p.Provider.StartMember(c)
}

// StartClient runs the hook, then hands the client the agent's member list,
// now and on every change. test.Provider's own StartClient cannot be used:
// it never records the cluster, and dereferences it (nil) on the first
// update.
func (p *protoProvider) StartClient(c *cluster.Cluster) error {
	p.beforeStart(c)
	update := func() {
		if c.ActorSystem.IsStopped() {
			return
		}
		statuses := p.agent.GetStatusHealth()
		members := make([]*cluster.Member, 0, len(statuses))
		for _, s := range statuses {
			members = append(members, &cluster.Member{Id: s.ID, Host: s.Host, Port: int32(s.Port), Kinds: slices.Clone(s.Kinds)})
		}
		c.MemberList.UpdateClusterTopology(members)
	}
	p.agent.SubscribeStatusUpdate(update)
	update()
	return nil
}

// converge waits until every node sees all members of pc, or joining's
// start fails, or clusterConvergeTimeout passes. It wakes on the nodes'
// topology events, not on a timer.
func (pc *protoCluster) converge(joining *protoMember) error {
	want := int32(len(pc.members))
	nodes := pc.nodes()
	return awaitCluster(pc.changed, func() (bool, error) {
		select {
		case <-joining.started:
			if joining.startErr != nil {
				return false, joining.startErr
			}
		default:
		}
		for _, m := range nodes {
			if m.size.Load() != want {
				return false, nil
			}
		}
		return true, nil
	}, func() error {
		sizes := make([]int32, len(nodes))
		for i, m := range nodes {
			sizes[i] = m.size.Load()
		}
		return fmt.Errorf("protoactor cluster did not converge on %d members within %v: nodes see %v", want, clusterConvergeTimeout, sizes)
	})
}

// shutdown stops every node concurrently (see stop), each bounded by
// shutdownTimeout.
func (pc *protoCluster) shutdown() error {
	nodes := pc.nodes()
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, m := range nodes {
		wg.Go(func() {
			if !m.awaitStarted() {
				// StartMember is stuck: shutting down under it would race.
				errs[i] = fmt.Errorf("protoactor cluster member %s did not start within %v; not shut down", m.c.ActorSystem.ID, clusterConvergeTimeout)
				return
			}
			done := make(chan error, 1)
			go func() {
				defer func() {
					if r := recover(); r != nil {
						done <- fmt.Errorf("protoactor cluster member shutdown: %v", r)
					}
				}()
				m.stop()
				done <- nil
			}()
			select {
			case errs[i] = <-done:
			case <-time.After(shutdownTimeout):
				// The shutdown goroutine is left behind: nothing can
				// interrupt protoactor-go's Shutdown.
				errs[i] = fmt.Errorf("protoactor cluster member %s did not shut down within %v", m.c.ActorSystem.ID, shutdownTimeout)
			}
			if m.sub != nil {
				m.c.ActorSystem.EventStream.Unsubscribe(m.sub)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// protoRemoteIdentity returns an identity of kind echoKind whose activation
// lives on a member other than c's; finding it activates it.
func protoRemoteIdentity(c *cluster.Cluster) (string, error) {
	self := c.ActorSystem.Address()
	for _, id := range identityNames("g", remoteIdentityCandidates) {
		pid := c.Get(id, echoKind)
		if pid == nil {
			return "", fmt.Errorf("protoactor cluster: no activation for %s", id)
		}
		if pid.Address != self {
			return id, nil
		}
	}
	return "", errors.New("protoactor cluster: every identity tried lives on member 0")
}

// protoAttemptTimeout bounds one protoactor-go cluster request. A request
// that protoactor-go loses (one that reaches a grain after the grain was told
// to stop in a handover is dropped without a dead-letter answer) costs this
// much before it is sent again. It is shorter than requestTimeout because
// protoactor-go's own retry never covers a lost request: its per-attempt
// timeout is the whole call's timeout.
const protoAttemptTimeout = time.Second

// protoGrainRequest sends ping to the echo grain id through c, and again
// after a timed-out attempt, until it has a pong or requestTimeout has passed.
func protoGrainRequest(c *cluster.Cluster, id string, ping *benchpb.Ping) error {
	deadline := time.Now().Add(requestTimeout)
	for {
		resp, err := c.Request(id, echoKind, ping, cluster.WithTimeout(protoAttemptTimeout))
		if err == nil {
			if _, ok := resp.(*benchpb.Pong); !ok {
				return fmt.Errorf("protoactor cluster request to %s: answer %T, want *benchpb.Pong", id, resp)
			}
			return nil
		}
		if !errors.Is(err, context.DeadlineExceeded) || time.Now().After(deadline) {
			return fmt.Errorf("protoactor cluster request to %s: %w", id, err)
		}
	}
}

// protoRequestAll asks each of the echo grains ids once through c, from
// 2×NumCPU goroutines, and returns after the last answer or the first
// failure (each request gives up after about requestTimeout, so this is
// bounded too).
func protoRequestAll(c *cluster.Cluster, ids []string) error {
	ping := &benchpb.Ping{}
	return concurrently(len(ids), func(i int) error { return protoGrainRequest(c, ids[i], ping) })
}
