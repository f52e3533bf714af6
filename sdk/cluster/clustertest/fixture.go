package clustertest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/internal/conf"
	"github.com/troupehq/troupe/sdk/internal/testkit"
	"github.com/troupehq/troupe/sdk/remote"
)

// Options configure the members a Fixture starts.
type Options struct {
	// Kinds every member hosts.
	Kinds []cluster.Kind
	// Cluster is the base cluster configuration (Membership and Kinds are
	// filled in by the fixture).
	Cluster cluster.Config
	// Remote is the base remote configuration (the fixture binds to an
	// ephemeral loopback port and sets MemberID, and AdvertisedAddress if
	// Proxied). Its zero reconnect fields take defaults that suit tests:
	// ReconnectTimeout 2s, ReconnectBackoff 10ms, MaxReconnectBackoff
	// 100ms (or ReconnectBackoff, if larger); fields set are kept.
	Remote remote.Config
	// Logger for every member; default discards.
	Logger *slog.Logger
	// Timeout bounds starting and stopping a member, and WaitConverged.
	// Default 20s.
	Timeout time.Duration
	// Proxied makes every node reachable through a loopback TCP proxy of
	// its own (testkit.Proxy), whose address it advertises: every
	// connection another node dials to it goes through the proxy, and Cut
	// breaks them as a network failure would. A node restarted at its
	// address keeps its proxy.
	Proxied bool
}

// Fixture is a cluster of real members in one test process.
type Fixture struct {
	t    testing.TB
	opts Options
	// Registry is the membership's source of truth, shared by every node
	// of the fixture. A test may register members of its own in it (which
	// WaitConverged then waits for) or Kill them.
	Registry *Registry

	mu      sync.Mutex
	members []*Node
	next    int
	proxies []*testkit.Proxy // closed once every node has stopped
}

// Node is one member (or client) of a Fixture.
type Node struct {
	// Name is the node's name in the fixture ("node1", "node2", ...), also
	// the "node" attribute of its log records.
	Name string
	// System is the node's actor system.
	System *actor.System
	// Remote connects System to the other nodes; Remote.Config().MemberID
	// is the node's member ID.
	Remote *remote.Remote
	// Cluster is the node's cluster member (or client).
	Cluster *cluster.Cluster
	stopped bool
	// proxy forwards the connections to the node (nil unless
	// Options.Proxied).
	proxy *testkit.Proxy
	// membership is the node's view of the Registry (nil for a node of
	// another registry).
	membership *membership
}

// New starts a fixture of n members hosting opts.Kinds; everything is shut
// down when the test ends.
func New(t testing.TB, n int, opts Options) *Fixture {
	t.Helper()
	conf.Default(&opts.Logger, slog.New(slog.DiscardHandler))
	conf.Default(&opts.Timeout, 20*time.Second)
	conf.Default(&opts.Remote.ReconnectTimeout, 2*time.Second)
	conf.Default(&opts.Remote.ReconnectBackoff, 10*time.Millisecond)
	conf.Default(&opts.Remote.MaxReconnectBackoff, max(100*time.Millisecond, opts.Remote.ReconnectBackoff))
	f := &Fixture{t: t, opts: opts, Registry: NewRegistry()}
	t.Cleanup(f.shutdown)
	for range n {
		f.AddMember()
	}
	f.WaitConverged()
	return f
}

// Members returns the nodes started, including stopped ones.
func (f *Fixture) Members() []*Node {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Node(nil), f.members...)
}

// Running returns the nodes not stopped or killed.
func (f *Fixture) Running() []*Node {
	var out []*Node
	for _, n := range f.Members() {
		if !n.stopped {
			out = append(out, n)
		}
	}
	return out
}

// AddMember starts a member hosting the fixture's kinds.
func (f *Fixture) AddMember() *Node { return f.start(f.opts.Kinds, nil) }

// AddClient starts a client-only member.
func (f *Fixture) AddClient() *Node { return f.start(nil, nil) }

// Restart starts a new process at the address of n, which was killed or
// crashed: a new member (new actor system, new member ID, the same kinds,
// or none for a client) as a process restarted at a static port is. While
// the port is still busy, it tries again, up to Options.Timeout.
func (f *Fixture) Restart(n *Node) *Node {
	f.t.Helper()
	if !n.stopped {
		f.t.Fatalf("clustertest: restart %s, which still runs", n.Name)
	}
	var kinds []cluster.Kind
	if len(n.Cluster.Self().Kinds) > 0 {
		kinds = f.opts.Kinds
	}
	return f.start(kinds, n)
}

// start starts a node hosting kinds: at the address of prev, which it
// restarts, if not nil.
func (f *Fixture) start(kinds []cluster.Kind, prev *Node) *Node {
	f.t.Helper()
	bind := "127.0.0.1:0"
	var proxy *testkit.Proxy
	switch {
	case f.opts.Proxied:
		// The node listens behind its proxy, on any port: the proxy
		// forwards to the one it takes, and its address is the node's.
		proxy = f.proxyOf(prev)
	case prev != nil:
		bind = prev.Remote.Address()
	}
	f.mu.Lock()
	f.next++
	name := fmt.Sprintf("node%d", f.next)
	f.mu.Unlock()
	sys, err := actor.NewSystem(actor.Config{Logger: f.opts.Logger.With("node", name)})
	if err != nil {
		f.t.Fatal(err)
	}
	rcfg := f.opts.Remote
	rcfg.BindAddress = bind
	if proxy != nil {
		rcfg.AdvertisedAddress = proxy.Addr()
	}
	rcfg.MemberID = fmt.Sprintf("%s-%d", name, time.Now().UnixNano())
	r, err := remote.New(sys, rcfg)
	if err != nil {
		f.t.Fatal(err)
	}
	// A port just let go of can be busy for a moment.
	testkit.Await(f.t, f.opts.Timeout, bind+" to be free", func() string {
		if err = r.Start(); errors.Is(err, syscall.EADDRINUSE) {
			return err.Error()
		}
		return ""
	})
	if err != nil {
		f.t.Fatal(err)
	}
	if proxy != nil {
		proxy.Forward(r.ListenAddress())
	}
	m := &membership{r: f.Registry}
	ccfg := f.opts.Cluster
	ccfg.Membership = m
	ccfg.Kinds = kinds
	c, err := cluster.New(sys, r, ccfg)
	if err != nil {
		f.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.Timeout)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		f.t.Fatal(err)
	}
	n := &Node{Name: name, System: sys, Remote: r, Cluster: c, proxy: proxy, membership: m}
	f.mu.Lock()
	f.members = append(f.members, n)
	f.mu.Unlock()
	return n
}

// Stop makes n leave gracefully and shuts it down.
func (f *Fixture) Stop(n *Node) {
	f.t.Helper()
	if n.stopped {
		return
	}
	n.stopped = true
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.Timeout)
	defer cancel()
	if err := n.Cluster.Shutdown(ctx); err != nil {
		f.t.Errorf("%s: cluster shutdown: %v", n.Name, err)
	}
	if err := n.System.Shutdown(ctx); err != nil {
		f.t.Errorf("%s: system shutdown: %v", n.Name, err)
	}
}

// Kill stops n without leaving, as if its process died: the registry drops
// it as a failure detector would, and its connections close without a
// goodbye.
func (f *Fixture) Kill(n *Node) {
	f.t.Helper()
	if n.stopped {
		return
	}
	f.Registry.Kill(n.Remote.Config().MemberID)
	f.die(n)
}

// Crash stops n as if its process died unseen by the membership: the
// registry still lists it, as a failure detector that has not noticed yet
// does, until the test drops it with Registry.Kill. Its connections close
// without a goodbye.
func (f *Fixture) Crash(n *Node) {
	f.t.Helper()
	if n.stopped {
		return
	}
	n.membership.crashed.Store(true)
	f.die(n)
}

// die ends n's process without a goodbye: its cluster closes at once and
// its system shuts down.
func (f *Fixture) die(n *Node) {
	f.t.Helper()
	n.stopped = true
	n.Cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), f.opts.Timeout)
	defer cancel()
	if err := n.System.Shutdown(ctx); err != nil {
		f.t.Errorf("%s: system shutdown: %v", n.Name, err)
	}
}

// Cut breaks every connection made to each of nodes, as a network failure
// would: both ends of each see it reset, without a goodbye, while both
// processes run, and the nodes connect again to the same processes. The
// fixture must be Proxied. A connection another node dialed to one of
// nodes breaks; one a node of nodes dialed to another node does not,
// unless that node is cut too: cut both nodes to break every connection
// between them, whichever side dialed it and whatever it carries.
func (f *Fixture) Cut(nodes ...*Node) {
	f.t.Helper()
	for _, n := range nodes {
		if n.proxy == nil {
			f.t.Fatalf("clustertest: cut %s, which is not proxied (Options.Proxied)", n.Name)
		}
		n.proxy.Cut()
	}
}

// WaitConverged waits until every running node's topology has exactly the
// members of the Registry, told apart by member ID (incarnation), not by
// address or count. It fails the test after Options.Timeout.
func (f *Fixture) WaitConverged() {
	f.t.Helper()
	testkit.Await(f.t, f.opts.Timeout, "the members to converge", f.diverged)
}

// diverged describes the first running node whose topology's members are
// not the Registry's, or returns "" if there is none.
func (f *Fixture) diverged() string {
	want := memberIDs(f.Registry.Members())
	for _, n := range f.Running() {
		if got := memberIDs(n.Cluster.Topology().Members); !slices.Equal(got, want) {
			return fmt.Sprintf("%s sees %v, the registry has %v", n.Name, got, want)
		}
	}
	return ""
}

// memberIDs returns the IDs of members, in their order.
func memberIDs(members []cluster.Member) []string {
	ids := make([]string, len(members))
	for i, m := range members {
		ids[i] = m.ID
	}
	return ids
}

func (f *Fixture) shutdown() {
	for _, n := range f.Members() {
		f.Stop(n)
	}
	f.mu.Lock()
	proxies := f.proxies
	f.mu.Unlock()
	for _, p := range proxies {
		p.Close()
	}
}

// proxyOf returns the proxy of prev, the node restarted, or a new one.
func (f *Fixture) proxyOf(prev *Node) *testkit.Proxy {
	f.t.Helper()
	if prev != nil {
		return prev.proxy
	}
	p, err := testkit.NewProxy()
	if err != nil {
		f.t.Fatal(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.proxies = append(f.proxies, p)
	return p
}
