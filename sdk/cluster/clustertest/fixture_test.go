package clustertest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/internal/testkit"
	"github.com/troupehq/troupe/sdk/remote"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var idle = cluster.Kind{Name: "idle", Props: actor.PropsFromFunc(func(actor.Context) {})}

func TestConvergenceTellsMembersApartByID(t *testing.T) {
	f := New(t, 1, Options{Kinds: []cluster.Kind{idle}})
	if d := f.diverged(); d != "" {
		t.Fatalf("a started fixture has not converged: %s", d)
	}
	// The node stops taking membership updates (its cluster closes, which
	// the fixture does not know) and a ghost takes its place in the
	// registry: as many members, with another ID.
	f.Members()[0].Cluster.Close()
	ghost := f.Registry.Membership()
	if err := ghost.Join(context.Background(), cluster.Member{ID: "ghost", Address: "127.0.0.1:1", Kinds: []string{"idle"}}, false, func([]cluster.Member) {}); err != nil {
		t.Fatal(err)
	}
	defer ghost.Leave(context.Background())
	if d := f.diverged(); d == "" {
		t.Fatal("converged, though the node sees itself and the registry has only the ghost")
	}
}

func TestRemoteConfigKeepsWhatTheCallerSet(t *testing.T) {
	for _, c := range []struct {
		set                     remote.Config
		timeout, first, maxWait time.Duration
	}{
		{remote.Config{}, 2 * time.Second, 10 * time.Millisecond, 100 * time.Millisecond},
		{remote.Config{ReconnectBackoff: 30 * time.Millisecond}, 2 * time.Second, 30 * time.Millisecond, 100 * time.Millisecond},
		{remote.Config{ReconnectBackoff: 300 * time.Millisecond}, 2 * time.Second, 300 * time.Millisecond, 300 * time.Millisecond},
		{remote.Config{ReconnectTimeout: 3 * time.Second}, 3 * time.Second, 10 * time.Millisecond, 100 * time.Millisecond},
		{remote.Config{MaxReconnectBackoff: time.Second}, 2 * time.Second, 10 * time.Millisecond, time.Second},
	} {
		f := New(t, 1, Options{Kinds: []cluster.Kind{idle}, Remote: c.set})
		set := [3]time.Duration{c.set.ReconnectTimeout, c.set.ReconnectBackoff, c.set.MaxReconnectBackoff}
		got := f.Members()[0].Remote.Config()
		if got.ReconnectTimeout != c.timeout || got.ReconnectBackoff != c.first || got.MaxReconnectBackoff != c.maxWait {
			t.Errorf("set (timeout, backoff, max) %v: got %v, %v to %v; want %v, %v to %v", set,
				got.ReconnectTimeout, got.ReconnectBackoff, got.MaxReconnectBackoff, c.timeout, c.first, c.maxWait)
		}
	}
}

// Restart starts a new member at the address of a stopped one; Crash stops
// a node and leaves it listed until the registry drops it.
func TestRestartAtTheSameAddressAfterKillOrCrash(t *testing.T) {
	f := New(t, 2, Options{Kinds: []cluster.Kind{idle}})
	for _, crash := range []bool{false, true} {
		old := f.Members()[len(f.Members())-1]
		if crash {
			f.Crash(old)
			if !slices.Contains(memberIDs(f.Registry.Members()), old.Cluster.Self().ID) {
				t.Fatal("the registry dropped a crashed node")
			}
		} else {
			f.Kill(old)
		}
		n := f.Restart(old)
		if n.Remote.Address() != old.Remote.Address() || n.Cluster.Self().ID == old.Cluster.Self().ID {
			t.Fatalf("restarted %s at %s as %s at %s: want the same address, a new ID",
				old.Cluster.Self().ID, old.Remote.Address(), n.Cluster.Self().ID, n.Remote.Address())
		}
		f.Registry.Kill(old.Cluster.Self().ID)
		f.WaitConverged()
		if got := len(f.Members()[0].Cluster.Topology().Members); got != 2 {
			t.Fatalf("%d members after the restart, want 2", got)
		}
	}
}

// reconnects counts the connections re-established to each peer address.
type reconnects struct {
	remote.NopMetrics
	mu sync.Mutex
	to map[string]int
}

func (m *reconnects) Reconnected(address string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.to == nil {
		m.to = make(map[string]int)
	}
	m.to[address]++
}

func (m *reconnects) count(address string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.to[address]
}

// A proxied node advertises its proxy's address. Cutting two nodes breaks
// the connections between them, and they connect again to the same
// processes; a node restarted keeps its address, its proxy's.
func TestProxiedNodesReconnectAfterACut(t *testing.T) {
	metrics := &reconnects{}
	f := New(t, 2, Options{Kinds: []cluster.Kind{idle}, Proxied: true, Remote: remote.Config{Metrics: metrics}})
	a, b := f.Members()[0], f.Members()[1]
	if a.Remote.Address() != a.proxy.Addr() || b.Remote.Address() != b.proxy.Addr() {
		t.Fatalf("nodes at %s and %s, their proxies at %s and %s", a.Remote.Address(), b.Remote.Address(), a.proxy.Addr(), b.proxy.Addr())
	}
	// Each node connects to the other: a request to an actor the other
	// does not have is answered with a dead letter.
	for _, c := range [][2]*Node{{a, b}, {b, a}} {
		nobody := actor.NewPID(c[1].Remote.Address(), "nobody")
		if _, err := c[0].System.Request(testkit.Context(t), nobody, wrapperspb.String("hello")); !errors.Is(err, actor.ErrDeadLetter) {
			t.Fatalf("%s to %s: %v, want a dead letter", c[0].Name, nobody, err)
		}
	}
	f.Cut(a, b)
	testkit.Eventually(t, "each node to reconnect to the other", func() bool {
		return metrics.count(a.Remote.Address()) > 0 && metrics.count(b.Remote.Address()) > 0
	})
	f.Crash(b)
	n := f.Restart(b)
	if n.Remote.Address() != b.Remote.Address() {
		t.Fatalf("restarted %s at %s, want %s", b.Name, n.Remote.Address(), b.Remote.Address())
	}
	f.Registry.Kill(b.Cluster.Self().ID)
	f.WaitConverged()
}
