package cluster_test

import (
	"fmt"
	"sync/atomic"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/cluster/clustertest"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// muteOnceKind is a grain kind whose activations answer requests with
// their id, but for the first request any of them gets, which is never
// answered (as by a process that died before it answered); that request's
// arrival is signalled on received.
func muteOnceKind(received chan<- struct{}) cluster.Kind {
	var muted atomic.Bool
	return cluster.Kind{Name: "mute", Props: actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); !ok {
			return
		}
		if !muted.Swap(true) {
			received <- struct{}{}
			return
		}
		id, _ := cluster.IdentityOf(c.Self())
		c.Respond(wrapperspb.String(id.ID))
	})}
}

// A call waits for an answer the member's process owed when it died, and
// the process is restarted at its address while the membership still lists
// the old one. The connection to the address reaches the new process: the
// answer will not come, and the call fails over at once (before, it waited
// until the membership dropped the old member, or, for a request written
// on the old connection after the membership had, until its context
// ended).
func TestACallWaitingOnAProcessRestartedAtItsAddressFailsOver(t *testing.T) {
	received := make(chan struct{}, 1)
	metrics := &countingMetrics{}
	f := clustertest.New(t, 2, clustertest.Options{
		Kinds:   []cluster.Kind{muteOnceKind(received)},
		Cluster: cluster.Config{Metrics: metrics},
	})
	caller, old := f.Members()[0], f.Members()[1]
	var id cluster.ClusterIdentity
	for i := 0; cluster.OwnerOf(old.Cluster.Topology(), id) != old.Cluster.Self().ID; i++ {
		id = cluster.ClusterIdentity{Kind: "mute", ID: fmt.Sprint("m", i)}
	}
	called := make(chan error, 1)
	go func() {
		res, err := caller.Cluster.Request(testkit.Context(t), id, wrapperspb.String("hello"))
		if who, ok := res.(*wrapperspb.StringValue); err == nil && (!ok || who.GetValue() != id.ID) {
			err = fmt.Errorf("answered %v", res)
		}
		called <- err
	}()
	<-received
	f.Crash(old)
	f.Restart(old)
	testkit.Eventually(t, "the call to fail over", func() bool { return metrics.retries.Load() > 0 })
	f.Registry.Kill(old.Cluster.Self().ID)
	if err := <-called; err != nil {
		t.Fatal(err)
	}
}
