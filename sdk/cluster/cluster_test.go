package cluster_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/cluster/clustertest"
	"github.com/troupehq/troupe/sdk/internal/testkit"
	"github.com/troupehq/troupe/sdk/remote"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// ledger tracks the live activations of a test's grains, cluster-wide.
type ledger struct {
	mu          sync.Mutex
	live        map[cluster.ClusterIdentity]map[pidKey]bool // identity → its live activations
	activations atomic.Int64
	stops       atomic.Int64
	received    atomic.Int64 // "inc"s counted, by every activation
	refused     atomic.Int64 // "fail"s answered with a GrainError
}

// pidKey is an activation's PID as a map key.
type pidKey struct{ address, id string }

func newLedger() *ledger {
	return &ledger{live: make(map[cluster.ClusterIdentity]map[pidKey]bool)}
}

func (l *ledger) started(id cluster.ClusterIdentity, pid *actor.PID) {
	l.activations.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.live[id] == nil {
		l.live[id] = map[pidKey]bool{}
	}
	l.live[id][pidKey{pid.Address, pid.Id}] = true
}

func (l *ledger) stopped(id cluster.ClusterIdentity, pid *actor.PID) {
	l.stops.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.live[id], pidKey{pid.Address, pid.Id})
	if len(l.live[id]) == 0 {
		delete(l.live, id)
	}
}

// liveWhere returns the live activations whose address satisfies at.
func (l *ledger) liveWhere(at func(address string) bool) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, pids := range l.live {
		for pid := range pids {
			if at(pid.address) {
				out = append(out, pid.address+"/"+pid.id)
			}
		}
	}
	return out
}

// liveAt returns the live activations at address.
func (l *ledger) liveAt(address string) []string {
	return l.liveWhere(func(a string) bool { return a == address })
}

// duplicates returns the identities with more than one live activation.
func (l *ledger) duplicates() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for id, pids := range l.live {
		if len(pids) > 1 {
			out = append(out, fmt.Sprintf("%v: %d", id, len(pids)))
		}
	}
	return out
}

func (l *ledger) liveCount(id cluster.ClusterIdentity) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.live[id])
}

// counter is the test grain: it counts the strings it is asked, answers
// the count, fails with a GrainError when asked "fail", and answers its id
// when asked "who".
type counter struct {
	l  *ledger
	id cluster.ClusterIdentity
	n  int
}

func (g *counter) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		g.id, _ = cluster.IdentityOf(c.Self())
		g.l.started(g.id, c.Self())
	case *actor.Stopping:
		g.l.stopped(g.id, c.Self())
	case *wrapperspb.StringValue:
		if m.GetValue() == "who" {
			c.Respond(wrapperspb.String(g.id.ID))
			return
		}
		if m.GetValue() == "fail" {
			g.l.refused.Add(1)
			c.Respond(cluster.NewGrainError("refused", "asked to fail"))
			return
		}
		g.n++
		g.l.received.Add(1)
		if c.Sender() != nil {
			c.Respond(wrapperspb.Int64(int64(g.n)))
		}
	}
}

func counterKind(l *ledger, idle time.Duration) cluster.Kind {
	return cluster.Kind{
		Name:        "counter",
		Props:       actor.PropsFromProducer(func() actor.Actor { return &counter{l: l} }),
		IdleTimeout: idle,
	}
}

func ask(t *testing.T, c *cluster.Cluster, id string) int64 {
	t.Helper()
	res, err := c.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: id}, wrapperspb.String("inc"))
	if err != nil {
		t.Fatalf("request %s: %v", id, err)
	}
	return res.(*wrapperspb.Int64Value).GetValue()
}

func TestActivationOnFirstCallAndLocationTransparency(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	nodes := f.Members()
	for i, n := range nodes {
		if got := ask(t, n.Cluster, "a"); got != int64(i+1) {
			t.Fatalf("call %d from %s = %d, want %d: one activation serves every member", i+1, n.Name, got, i+1)
		}
	}
	if n := l.activations.Load(); n != 1 {
		t.Fatalf("%d activations, want 1", n)
	}
	pid, err := nodes[0].Cluster.Get(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: "a"})
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := cluster.IdentityOf(pid); !ok || id.ID != "a" {
		t.Fatalf("IdentityOf(%v) = %v, %v", pid, id, ok)
	}
}

func TestConcurrentFirstCallsMakeOneActivation(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	nodes := f.Members()
	for round := range 5 {
		id := fmt.Sprintf("hot-%d", round)
		var wg sync.WaitGroup
		var failed atomic.Int64
		const callers = 60
		for i := range callers {
			wg.Go(func() {
				_, err := nodes[i%len(nodes)].Cluster.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: id}, wrapperspb.String("inc"))
				if err != nil {
					failed.Add(1)
				}
			})
		}
		wg.Wait()
		if failed.Load() > 0 {
			t.Fatalf("%d concurrent first calls failed", failed.Load())
		}
		if got := ask(t, nodes[0].Cluster, id); got != callers+1 {
			t.Fatalf("grain %s counted %d, want %d: calls went to more than one activation", id, got, callers+1)
		}
	}
	if n := l.activations.Load(); n != 5 {
		t.Fatalf("%d activations for 5 identities", n)
	}
}

func TestPassivationAndReactivation(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 2, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 30*time.Millisecond)}})
	c := f.Members()[0].Cluster
	id := cluster.ClusterIdentity{Kind: "counter", ID: "sleepy"}
	if got := ask(t, c, "sleepy"); got != 1 {
		t.Fatalf("first call = %d", got)
	}
	testkit.Eventually(t, "the idle grain to passivate", func() bool { return l.stops.Load() == 1 && l.liveCount(id) == 0 })
	// The next message activates it again, with fresh state.
	if got := ask(t, c, "sleepy"); got != 1 {
		t.Fatalf("call after passivation = %d, want 1 (a new activation)", got)
	}
	if n := l.activations.Load(); n != 2 {
		t.Fatalf("%d activations, want 2", n)
	}
}

func TestGrainErrorsAreTypedAndNotRetried(t *testing.T) {
	f, l, metrics := counterCluster(t, 2)
	c := f.Members()[1].Cluster
	_, err := c.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: "x"}, wrapperspb.String("fail"))
	var ge *cluster.GrainError
	if !errors.As(err, &ge) || ge.GetCode() != "refused" || ge.GetMessage() != "asked to fail" {
		t.Fatalf("err = %v, want a GrainError", err)
	}
	if !errors.Is(err, &cluster.GrainError{Code: "refused"}) || errors.Is(err, &cluster.GrainError{Code: "other"}) {
		t.Fatal("errors.Is does not match GrainErrors by code")
	}
	// A retry of the refused request would reach the grain again. (A retry
	// before it reached the grain, for an ownership error while the new
	// cluster settles, is allowed: that is what retries are for.)
	if n := l.refused.Load(); n != 1 {
		t.Fatalf("the grain refused the request %d times, want 1: an application error was retried", n)
	}
	if metrics.calls.Load() != 1 || metrics.activated.Load() != 1 {
		t.Fatalf("metrics: %d calls, %d activations", metrics.calls.Load(), metrics.activated.Load())
	}
}

func TestClientsCallButNeverHost(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 2, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	client := f.AddClient()
	for i := range 20 {
		ask(t, client.Cluster, fmt.Sprint("c", i))
	}
	if _, in := client.Cluster.Topology().Member(client.Cluster.Self().ID); in {
		t.Fatal("the client is in the topology")
	}
	pid, err := client.Cluster.Get(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: "c0"})
	if err != nil || pid.Address == client.Remote.Address() {
		t.Fatalf("activation %v on the client (%v)", pid, err)
	}
}

func TestSendReachesAPassivatedGrainThroughAStaleCache(t *testing.T) {
	l, metrics := newLedger(), &countingMetrics{}
	// Idle long enough that the grain outlives the first three calls even
	// on a loaded machine.
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 300*time.Millisecond)},
		Cluster: cluster.Config{Metrics: metrics},
	})
	id := cluster.ClusterIdentity{Kind: "counter", ID: "mailbox"}
	// The sender must not host the grain: a host forgets the activations
	// that passivate on it, so only another member's cache goes stale.
	// Where the activation lands is only known once it exists (while a
	// topology settles it may land on a former owner).
	host, err := f.Members()[0].Cluster.Get(testkit.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	var sender *clustertest.Node
	for _, n := range f.Members() {
		if n.Remote.Address() != host.Address {
			sender = n
		}
	}
	c := sender.Cluster
	if err := c.Send(testkit.Context(t), id, wrapperspb.String("inc")); err != nil {
		t.Fatal(err)
	}
	if pid, err := c.Get(testkit.Context(t), id); err != nil || !pid.Equal(host) {
		t.Fatalf("the sender found the activation at %v (%v), want %v", pid, err, host)
	}
	testkit.Eventually(t, "passivation", func() bool { return l.stops.Load() == 1 && l.received.Load() == 1 })
	// The sender's cache still points at the stopped activation, and the
	// message goes there: its host re-delivers it to a new activation.
	hits := metrics.hits.Load()
	if err := c.Send(testkit.Context(t), id, wrapperspb.String("inc")); err != nil {
		t.Fatal(err)
	}
	if got := metrics.hits.Load() - hits; got != 1 {
		t.Fatalf("the send found its activation in the cache %d times, want once (the stale entry)", got)
	}
	testkit.Eventually(t, "a new activation to take the re-delivered message", func() bool {
		return l.activations.Load() == 2 && l.received.Load() == 2
	})
}

// onSecond places activations on the second member that hosts the kind,
// whoever owns them.
type onSecond struct{}

func (onSecond) Place(_ cluster.ClusterIdentity, _ string, candidates []cluster.Member) string {
	return candidates[len(candidates)-1].ID
}

func TestPlacementOnAnotherMember(t *testing.T) {
	l := newLedger()
	k := counterKind(l, 0)
	k.Placement = onSecond{}
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{k}})
	nodes := f.Members()
	topo := nodes[0].Cluster.Topology()
	last := topo.Members[len(topo.Members)-1]
	for i := range 20 {
		id := cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("p", i)}
		pid, err := nodes[i%3].Cluster.Get(testkit.Context(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if pid.Address != last.Address {
			t.Fatalf("%v placed at %s, want %s", id, pid.Address, last.Address)
		}
		// Every member finds the same activation.
		for _, n := range nodes {
			if got, err := n.Cluster.Get(testkit.Context(t), id); err != nil || !got.Equal(pid) {
				t.Fatalf("%s found %v (%v), want %v", n.Name, got, err, pid)
			}
		}
		// Get returns once the activation exists, maybe before it has
		// started; a call is answered after.
		if got := ask(t, nodes[0].Cluster, id.ID); got != 1 {
			t.Fatalf("first call to %v counted %d, want 1", id, got)
		}
	}
	if n := l.activations.Load(); n != 20 {
		t.Fatalf("%d activations for 20 identities", n)
	}
}

// A cached activation at an address that is no member (its member left,
// and what it answers while shutting down may never arrive) is not waited
// on: the call goes to the owner again at once.
func TestCallsDoNotWaitOnAnActivationOutsideTheCluster(t *testing.T) {
	f, l, _ := counterCluster(t, 2)
	// A system outside the cluster whose actor never answers.
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := remote.New(sys, f.Members()[0].Remote.Config())
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := testkit.Context(t)
		_ = r.Shutdown(ctx)
		_ = sys.Shutdown(ctx)
	})
	silent, err := sys.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), "silent")
	if err != nil {
		t.Fatal(err)
	}
	c := f.Members()[0].Cluster
	id := cluster.ClusterIdentity{Kind: "counter", ID: "outside"}
	cluster.Remember(c, id, silent)
	ctx, cancel := context.WithTimeout(testkit.Context(t), testkit.Timeout/4)
	defer cancel()
	res, err := c.Request(ctx, id, wrapperspb.String("inc"))
	if err != nil {
		t.Fatalf("call with a cached activation outside the cluster: %v", err)
	}
	if got := res.(*wrapperspb.Int64Value).GetValue(); got != 1 || l.activations.Load() != 1 {
		t.Fatalf("answer %d from %d activations, want 1 from a new one", got, l.activations.Load())
	}
}

func TestCallThroughTheOwnerFailsOverWhenTheHostDies(t *testing.T) {
	// The first activation swallows its first message; later ones answer.
	var swallowed atomic.Bool
	k := cluster.Kind{Name: "counter", Placement: onSecond{}, Props: actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); ok && !swallowed.Swap(true) {
			return
		}
		if _, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Respond(wrapperspb.Int64(1))
		}
	})}
	f := clustertest.New(t, 3, clustertest.Options{Kinds: []cluster.Kind{k}})
	client := f.AddClient()
	topo := client.Cluster.Topology()
	host := topo.Members[len(topo.Members)-1] // where onSecond places
	var id cluster.ClusterIdentity
	for i := 0; ; i++ {
		id = cluster.ClusterIdentity{Kind: "counter", ID: fmt.Sprint("far-", i)}
		if cluster.OwnerOf(topo, id) != host.ID {
			break // the owner outlives the host
		}
	}
	done := make(chan error, 1)
	go func() {
		// A cold call: it goes through the owner, the answer would come
		// from the host.
		_, err := client.Cluster.Request(testkit.Context(t), id, wrapperspb.String("inc"))
		done <- err
	}()
	testkit.Eventually(t, "the first activation to swallow the call", swallowed.Load)
	for _, n := range f.Members() {
		if n.Remote.Config().MemberID == host.ID {
			f.Kill(n)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("call whose host died: %v, want it answered by a new activation", err)
	}
}

func TestUnknownKindFailsAfterRetrying(t *testing.T) {
	l := newLedger()
	f := clustertest.New(t, 1, clustertest.Options{Kinds: []cluster.Kind{counterKind(l, 0)}})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := f.Members()[0].Cluster.Request(ctx, cluster.ClusterIdentity{Kind: "nope", ID: "1"}, wrapperspb.String("x"))
	// No member hosts the kind yet (one may join): retried until the
	// deadline, which the error names along with the last failure.
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "no member hosts") {
		t.Fatalf("err = %v, want the deadline, naming the last error", err)
	}
}

type countingMetrics struct {
	cluster.NopMetrics
	calls, retries, activated, passivated, handovers atomic.Int64
	hits, misses                                     atomic.Int64
}

func (m *countingMetrics) CacheLookup(_ string, hit bool) {
	if hit {
		m.hits.Add(1)
	} else {
		m.misses.Add(1)
	}
}

// counterCluster starts n members hosting the counter kind, which never
// passivates, and counting metrics.
func counterCluster(t *testing.T, n int) (*clustertest.Fixture, *ledger, *countingMetrics) {
	l, metrics := newLedger(), &countingMetrics{}
	f := clustertest.New(t, n, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 0)},
		Cluster: cluster.Config{Metrics: metrics},
	})
	return f, l, metrics
}

func (m *countingMetrics) GrainCall(string, time.Duration, error) { m.calls.Add(1) }
func (m *countingMetrics) Retry(string)                           { m.retries.Add(1) }
func (m *countingMetrics) Activated(string)                       { m.activated.Add(1) }
func (m *countingMetrics) Passivated(string)                      { m.passivated.Add(1) }
func (m *countingMetrics) HandoverCompleted(time.Duration, bool)  { m.handovers.Add(1) }

func TestConfigValidation(t *testing.T) {
	props := actor.PropsFromFunc(func(actor.Context) {})
	m := clustertest.NewRegistry().Membership()
	for _, cfg := range []cluster.Config{
		{},
		{Membership: m, Kinds: []cluster.Kind{{Name: "", Props: props}}},
		{Membership: m, Kinds: []cluster.Kind{{Name: "a/b", Props: props}}},
		{Membership: m, Kinds: []cluster.Kind{{Name: "a", Props: props}, {Name: "a", Props: props}}},
		{Membership: m, Kinds: []cluster.Kind{{Name: "a"}}},
		{Membership: m, Kinds: []cluster.Kind{{Name: "a", Props: props, IdleTimeout: -1}}},
		{Membership: m, HandoverTimeout: -time.Second},
		{Membership: m, LeaveTimeout: -time.Second},
		{Membership: m, RetryBackoff: -time.Millisecond},
		{Membership: m, RetryBackoff: time.Second, MaxRetryBackoff: time.Millisecond},
		{Membership: m, PIDCacheSize: -1},
		{Membership: m, MaxDepartedMembers: -1},
	} {
		if _, err := cluster.WithDefaults(cfg); !errors.Is(err, cluster.ErrInvalidConfig) {
			t.Errorf("Config %+v: %v, want ErrInvalidConfig", cfg, err)
		}
	}
	if _, err := cluster.New(nil, nil, cluster.Config{Membership: m}); !errors.Is(err, cluster.ErrInvalidConfig) {
		t.Errorf("New without a system = %v, want ErrInvalidConfig", err)
	}
	// A first backoff over the default maximum raises the maximum, unless
	// that is set too.
	cfg, err := cluster.WithDefaults(cluster.Config{Membership: m, RetryBackoff: time.Second})
	if err != nil || cfg.MaxRetryBackoff != time.Second {
		t.Errorf("RetryBackoff 1s alone: MaxRetryBackoff %v, error %v; want 1s, nil", cfg.MaxRetryBackoff, err)
	}
}

func TestRetryBackoffOptionIsValidated(t *testing.T) {
	f, l, metrics := counterCluster(t, 1)
	c := f.Members()[0].Cluster
	id := cluster.ClusterIdentity{Kind: "counter", ID: "backoff"}
	inc := wrapperspb.String("inc")
	for _, b := range [][2]time.Duration{
		{0, 0}, {0, time.Second}, {time.Millisecond, 0}, {-time.Millisecond, time.Second}, {time.Second, time.Millisecond},
	} {
		opt := cluster.WithRetryBackoff(b[0], b[1])
		_, reqErr := c.Request(testkit.Context(t), id, inc, opt)
		sendErr := c.Send(testkit.Context(t), id, inc, opt)
		_, getErr := c.Get(testkit.Context(t), id, opt)
		for call, err := range map[string]error{"Request": reqErr, "Send": sendErr, "Get": getErr} {
			if !errors.Is(err, cluster.ErrInvalidConfig) {
				t.Errorf("%s with WithRetryBackoff(%v, %v) = %v, want ErrInvalidConfig", call, b[0], b[1], err)
			}
		}
	}
	if n := l.activations.Load() + metrics.retries.Load(); n != 0 {
		t.Fatalf("calls with invalid options activated or retried (%d)", n)
	}
	if _, err := c.Request(testkit.Context(t), id, inc, cluster.WithRetryBackoff(time.Millisecond, time.Millisecond)); err != nil {
		t.Fatalf("call with a valid backoff: %v", err)
	}
}

func TestARetryingCallEndsWhenItsMemberCloses(t *testing.T) {
	f, _, metrics := counterCluster(t, 2)
	n := f.Members()[1]
	done := make(chan error, 1)
	go func() {
		// No member hosts the kind: retried until the member closes.
		_, err := n.Cluster.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "nope", ID: "1"}, wrapperspb.String("x"))
		done <- err
	}()
	testkit.Eventually(t, "the call to retry", func() bool { return metrics.retries.Load() > 0 })
	n.Cluster.Close()
	if err := <-done; !errors.Is(err, cluster.ErrNotStarted) || !strings.Contains(err.Error(), "no member hosts") {
		t.Fatalf("call retrying as its member closed: %v, want ErrNotStarted naming the last error", err)
	}
}

// stuckLeave is a Membership whose Leave blocks until its context ends, as
// one whose source of truth is unreachable would.
type stuckLeave struct {
	cluster.Membership
	release chan struct{} // ends the wait, for a test that failed
}

func (m *stuckLeave) Leave(ctx context.Context) error {
	select {
	case <-ctx.Done():
	case <-m.release:
	}
	// Stop the in-memory membership's updates all the same.
	if err := m.Membership.Leave(context.Background()); err != nil {
		return err
	}
	return fmt.Errorf("the source of truth is unreachable: %w", context.Cause(ctx))
}

func TestCloseGivesUpOnAStuckLeaveAfterLeaveTimeout(t *testing.T) {
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Shutdown(context.Background()) })
	r, err := remote.New(sys, remote.Config{BindAddress: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	m := &stuckLeave{Membership: clustertest.NewRegistry().Membership(), release: make(chan struct{})}
	t.Cleanup(func() { close(m.release) })
	c, err := cluster.New(sys, r, cluster.Config{
		Membership:   m,
		Kinds:        []cluster.Kind{counterKind(newLedger(), 0)},
		LeaveTimeout: 50 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		c.Close()
		close(closed)
	}()
	select {
	case <-closed:
	case <-time.After(testkit.Timeout):
		t.Fatal("Close still waits for a Leave that does not return")
	}
}

func TestPIDCacheSizeBoundsTheCache(t *testing.T) {
	l, metrics := newLedger(), &countingMetrics{}
	f := clustertest.New(t, 1, clustertest.Options{
		Kinds:   []cluster.Kind{counterKind(l, 0)},
		Cluster: cluster.Config{Metrics: metrics, PIDCacheSize: 1},
	})
	c := f.Members()[0].Cluster
	lookup := func(id string) (hit bool) {
		t.Helper()
		before := metrics.hits.Load()
		if _, err := c.Get(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: id}); err != nil {
			t.Fatal(err)
		}
		return metrics.hits.Load() > before
	}
	lookup("a")
	if !lookup("a") {
		t.Fatal("a second look-up missed the cache")
	}
	lookup("b") // takes the one place
	if lookup("a") {
		t.Fatal("a cache of one entry kept two")
	}
}

// ownedBy returns the first identity of kind (ids prefix0, prefix1, …)
// that n owns in its current topology.
func ownedBy(t *testing.T, n *clustertest.Node, kind, prefix string) cluster.ClusterIdentity {
	t.Helper()
	for i := range 1000 {
		id := cluster.ClusterIdentity{Kind: kind, ID: fmt.Sprint(prefix, i)}
		if cluster.OwnerOf(n.Cluster.Topology(), id) == n.Cluster.Self().ID {
			return id
		}
	}
	t.Fatalf("%s owns none of 1000 identities of %s", n.Name, kind)
	return cluster.ClusterIdentity{}
}

// deadLetters counts the dead letters of a system by target.
type deadLetters struct {
	mu  sync.Mutex
	got map[string]int
}

func countDeadLetters(t *testing.T, sys *actor.System) *deadLetters {
	d := &deadLetters{got: map[string]int{}}
	sub := actor.Subscribe(sys.EventStream(), func(e *actor.DeadLetterEvent) {
		d.mu.Lock()
		d.got[e.PID.GetId()]++
		d.mu.Unlock()
	})
	t.Cleanup(sub.Unsubscribe)
	return d
}

func (d *deadLetters) of(pid *actor.PID) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.got[pid.Id]
}

// An owner's table can name an activation that no longer exists: a
// handover report that arrived late, after its host told another owner the
// activation stopped. Callers that find it gone say so, and the owner
// activates the grain again instead of answering with it forever.
func TestAnOwnerReplacesAnActivationItsCallersFoundGone(t *testing.T) {
	f, l, _ := counterCluster(t, 2)
	owner, host := f.Members()[0], f.Members()[1]
	dl := countDeadLetters(t, host.System)
	report := func(prefix string) (cluster.ClusterIdentity, *actor.PID) {
		id := ownedBy(t, owner, "counter", prefix)
		ghost := cluster.ActivationPID(host.Remote.Address(), id, 999)
		cluster.ReportActivation(owner.Cluster, host.Cluster.Self().ID, id, ghost)
		return id, ghost
	}

	// A request.
	id, ghost := report("request")
	res, err := host.Cluster.Request(testkit.Context(t), id, wrapperspb.String("inc"))
	if err != nil || res.(*wrapperspb.Int64Value).GetValue() != 1 {
		t.Fatalf("request = %v, %v; want 1 from a new activation", res, err)
	}
	if n := dl.of(ghost); n == 0 || n > 2 {
		t.Fatalf("%d dead letters for the gone activation, want 1 or 2 (the owner answered with it until told)", n)
	}

	// A fire-and-forget message: the host that receives it for the gone
	// activation re-delivers it, and the owner replaces the entry.
	id, ghost = report("send")
	if err := host.Cluster.Send(testkit.Context(t), id, wrapperspb.String("inc")); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the message to reach a new activation", func() bool { return l.received.Load() == 2 })
	if n := dl.of(ghost); n != 1 {
		t.Fatalf("%d dead letters for the gone activation, want 1", n)
	}
	if dups := l.duplicates(); len(dups) > 0 || l.activations.Load() != 2 {
		t.Fatalf("%d activations, duplicates %v; want one per grain", l.activations.Load(), dups)
	}
}

type notSerializable struct{ N int }

// A message no transport can carry fails the call at once: retrying it
// cannot help.
func TestAnUnserializableRequestIsNotRetried(t *testing.T) {
	f, _, metrics := counterCluster(t, 2)
	caller, owner := f.Members()[0], f.Members()[1]
	_, err := caller.Cluster.Request(testkit.Context(t), ownedBy(t, owner, "counter", "u"), &notSerializable{1})
	if !errors.Is(err, remote.ErrUnknownType) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want ErrUnknownType at once", err)
	}
	if n := metrics.retries.Load(); n != 0 {
		t.Fatalf("%d retries, want none", n)
	}
}

// Send, like Request, fails at once for a message no serializer accepts
// when the grain lives on another member: before, it returned nil and the
// message went to dead letters, which the caller never sees.
func TestAnUnserializableSendToAnotherMemberFails(t *testing.T) {
	f, l, _ := counterCluster(t, 2)
	caller, owner := f.Members()[0], f.Members()[1]
	id := ownedBy(t, owner, "counter", "u")
	if err := caller.Cluster.Send(testkit.Context(t), id, wrapperspb.String("inc")); err != nil {
		t.Fatal(err) // activates the grain on the owner
	}
	testkit.Eventually(t, "the grain to receive the message", func() bool { return l.received.Load() == 1 })
	err := caller.Cluster.Send(testkit.Context(t), id, &actor.Envelope{Message: &notSerializable{1}, Header: actor.Header{"trace": "t-1"}})
	if !errors.Is(err, remote.ErrUnknownType) || !strings.Contains(err.Error(), "notSerializable") {
		t.Fatalf("err = %v, want ErrUnknownType naming the type", err)
	}
	// On the member hosting it, the message needs no serializer.
	if err := owner.Cluster.Send(testkit.Context(t), id, &notSerializable{1}); err != nil {
		t.Fatalf("local Send: %v", err)
	}
}

// An owner's answer can name an activation on a member that already left:
// it was on its way when the member left, or the owner's identity actor
// takes in the topology after the member's cache does, and answers its
// local callers from its table until then. The cache must not keep it, or
// Get would return it and Send send there: no member would reroute the
// message, and every later Send would go there too.
func TestGetAndSendDoNotUseAnActivationLocatedOnAMemberThatLeft(t *testing.T) {
	f, l, _ := counterCluster(t, 2)
	c := f.Members()[0].Cluster
	left := f.AddMember()
	address := left.Remote.Address()
	f.Stop(left)
	f.WaitConverged()
	id := cluster.ClusterIdentity{Kind: "counter", ID: "departed"}
	cluster.Locate(c, id, cluster.ActivationPID(address, id, 1))
	pid, err := c.Get(testkit.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if pid.Address == address {
		t.Fatalf("Get returned %v, on the member that left", pid)
	}
	cluster.Locate(c, id, cluster.ActivationPID(address, id, 1))
	for range 3 {
		if err := c.Send(testkit.Context(t), id, wrapperspb.String("inc")); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, "the grain to receive the messages", func() bool { return l.received.Load() == 3 })
}

// A fire-and-forget message that a grain's bounded mailbox dropped (the
// OverflowDrop policy) is not re-sent: the activation is alive, and
// re-sending to it until it has room, as to a passivated one, undoes the
// policy and spins while the grain is busy.
func TestAMessageDroppedByAFullMailboxIsNotRerouted(t *testing.T) {
	f, _, _ := counterCluster(t, 1)
	n := f.Members()[0]
	id := cluster.ClusterIdentity{Kind: "counter", ID: "full"}
	pid, err := n.Cluster.Get(testkit.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	// What the actor system publishes when the mailbox drops a message.
	cluster.Reroute(n.Cluster, &actor.DeadLetterEvent{PID: pid, Message: wrapperspb.String("inc"), Reason: actor.ErrMailboxFull})
	if got := ask(t, n.Cluster, id.ID); got != 1 {
		t.Fatalf("the grain counted %d messages, want 1: the dropped one was re-sent", got)
	}
}

// A fire-and-forget message rerouted from a passivated activation keeps
// its header (trace IDs, tenants) on the way to the new one.
func TestAReroutedMessageKeepsItsHeader(t *testing.T) {
	var got testkit.Recorder[string]
	kind := cluster.Kind{Name: "tracer", Props: actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			got.Add(m.GetValue() + " " + c.Header().Get("trace"))
		}
	})}
	f := clustertest.New(t, 1, clustertest.Options{Kinds: []cluster.Kind{kind}})
	n := f.Members()[0]
	id := cluster.ClusterIdentity{Kind: "tracer", ID: "t"}
	pid, err := n.Cluster.Get(testkit.Context(t), id)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.System.StopAndWait(testkit.Context(t), pid); err != nil {
		t.Fatal(err)
	}
	n.System.Send(pid, &actor.Envelope{Message: wrapperspb.String("late"), Header: actor.Header{"trace": "t-1"}})
	if m := got.WaitLen(t, 1)[0]; m != "late t-1" {
		t.Fatalf("the new activation got %q, want %q", m, "late t-1")
	}
}

// panickyPlacement panics for identities whose id starts with "boom" and
// places the others on their owner.
type panickyPlacement struct{}

func (panickyPlacement) Place(id cluster.ClusterIdentity, owner string, _ []cluster.Member) string {
	if strings.HasPrefix(id.ID, "boom") {
		panic("placement bug")
	}
	return owner
}

// A Placement that panics fails that activation only. The member's
// identity actor would otherwise restart, forgetting its owner tables and
// stopping every grain the member hosts.
func TestAPanickingPlacementFailsThatActivationOnly(t *testing.T) {
	l := newLedger()
	kind := counterKind(l, 0)
	kind.Placement = panickyPlacement{}
	f := clustertest.New(t, 1, clustertest.Options{Kinds: []cluster.Kind{kind}})
	c := f.Members()[0].Cluster
	if got := ask(t, c, "a"); got != 1 {
		t.Fatalf("first call counted %d", got)
	}
	_, err := c.Request(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: "boom"}, wrapperspb.String("inc"))
	if !errors.Is(err, cluster.ErrActivationFailed) {
		t.Fatalf("err = %v, want ErrActivationFailed", err)
	}
	if got := ask(t, c, "a"); got != 2 || l.activations.Load() != 1 {
		t.Fatalf("after the panic: count %d, %d activations; want 2 from the first activation", got, l.activations.Load())
	}
}
