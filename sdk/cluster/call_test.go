package cluster_test

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/cluster/clustertest"
	"github.com/troupehq/troupe/sdk/cluster/internal/clusterpb"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// The names of a member's cluster processes, fixed by the protocol.
const (
	identityProcess = "$cluster-identity"
	cacheProcess    = "$cluster-cache"
)

// headerGrain answers every request with the sorted keys and values of
// the header its message came with.
func headerGrain(c actor.Context) {
	if _, ok := c.Message().(*wrapperspb.StringValue); !ok {
		return
	}
	var kv []string
	for k, v := range c.Header() {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	c.Respond(wrapperspb.String(strings.Join(kv, ",")))
}

func TestGrainCallsKeepTheCallersHeaderOnly(t *testing.T) {
	f := clustertest.New(t, 3, clustertest.Options{
		Kinds: []cluster.Kind{{Name: "header", Props: actor.PropsFromFunc(headerGrain)}},
	})
	client := f.AddClient()
	msg := &actor.Envelope{Message: wrapperspb.String("?"), Header: actor.Header{"trace": "t-1"}}
	for i := range 20 {
		id := cluster.ClusterIdentity{Kind: "header", ID: fmt.Sprint("h", i)}
		// The first call goes through the owner, the second (usually) from
		// the cache straight to the activation: the grain sees the same.
		for range 2 {
			res, err := client.Cluster.Request(testkit.Context(t), id, msg)
			if err != nil {
				t.Fatal(err)
			}
			if got := res.(*wrapperspb.StringValue).GetValue(); got != "trace=t-1" {
				t.Fatalf("the grain saw header %q, want just the caller's trace=t-1", got)
			}
		}
	}
}

func TestCallersLearnActivationsFromOwners(t *testing.T) {
	f, l, metrics := counterCluster(t, 3)
	// A client and every member learn, from the owner that delivered their
	// first call, where the activation lives: later calls hit the cache.
	callers := append(f.Members(), f.AddClient())
	for i, n := range callers {
		id := fmt.Sprint("learn-", i)
		ask(t, n.Cluster, id)
		before := metrics.hits.Load()
		testkit.Eventually(t, n.Name+" to cache "+id, func() bool {
			ask(t, n.Cluster, id)
			return metrics.hits.Load() > before
		})
	}
	if n := l.activations.Load(); n != int64(len(callers)) {
		t.Fatalf("%d activations for %d identities", n, len(callers))
	}
}

func TestCacheTakesOnlyNoticesOfMembers(t *testing.T) {
	f, _, metrics := counterCluster(t, 2)
	client := f.AddClient()
	cache := actor.NewPID(client.Remote.Address(), cacheProcess)
	id := &clusterpb.Identity{Kind: "counter", Id: "noticed"}

	// A notice about an address that is no member is dropped: the call
	// misses the cache and goes through the owner.
	client.System.Send(cache, &clusterpb.ActivationLocated{Identity: id, Pid: actor.NewPID("127.0.0.1:1", "ghost")})
	if got := ask(t, client.Cluster, "noticed"); got != 1 {
		t.Fatalf("first call counted %d", got)
	}
	if metrics.hits.Load() != 0 {
		t.Fatal("the cache took a notice about an activation on no member")
	}

	// A notice about a member's activation is taken.
	pid, err := f.Members()[0].Cluster.Get(testkit.Context(t), cluster.ClusterIdentity{Kind: "counter", ID: "noticed"})
	if err != nil {
		t.Fatal(err)
	}
	other := &clusterpb.Identity{Kind: "counter", Id: "other"}
	client.System.Send(cache, &clusterpb.ActivationLocated{Identity: other, Pid: pid})
	before := metrics.hits.Load()
	// The cached PID is "noticed"'s activation: the call lands there.
	if got := ask(t, client.Cluster, "other"); got != 2 || metrics.hits.Load() != before+1 {
		t.Fatalf("call after the notice counted %d with %d cache hits, want 2 and a hit",
			got, metrics.hits.Load()-before)
	}

	// Anything else is a dead letter, which a request learns at once.
	if _, err := client.System.Request(testkit.Context(t), cache, wrapperspb.String("hello")); !errors.Is(err, actor.ErrDeadLetter) {
		t.Fatalf("request to the cache process: %v, want a dead letter", err)
	}
}

func TestIdentityActorRefusesWhatIsNotAGrainCall(t *testing.T) {
	f := clustertest.New(t, 1, clustertest.Options{Kinds: []cluster.Kind{counterKind(newLedger(), 0)}})
	client := f.AddClient()
	identity := actor.NewPID(f.Members()[0].Remote.Address(), identityProcess)
	for name, msg := range map[string]any{
		"no header": wrapperspb.String("inc"),
		"bad topology": &actor.Envelope{Message: wrapperspb.String("inc"), Header: actor.Header{
			"troupe-cluster-kind": "counter", "troupe-cluster-id": "x", "troupe-cluster-topology": "not-hex",
		}},
	} {
		_, err := client.System.Request(testkit.Context(t), identity, msg)
		var dl *actor.DeadLetterError
		if !errors.As(err, &dl) || !strings.Contains(err.Error(), "identity actor") {
			t.Errorf("%s: %v, want a dead letter explaining why", name, err)
		}
	}
	// A call for a topology the owner does not see is answered, not
	// delivered: the caller retries once the views agree.
	res, err := client.System.Request(testkit.Context(t), identity, &actor.Envelope{Message: wrapperspb.String("inc"), Header: actor.Header{
		"troupe-cluster-kind": "counter", "troupe-cluster-id": "x", "troupe-cluster-topology": "1",
	}})
	resp, ok := res.(*clusterpb.ActivationResponse)
	if err != nil || !ok || resp.GetStatus() != clusterpb.ActivationStatus_ACTIVATION_STATUS_TOPOLOGY_MISMATCH {
		t.Fatalf("stale grain call: %v, %v; want a topology mismatch", res, err)
	}
}
