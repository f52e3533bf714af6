package cluster_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster"
	"github.com/troupehq/troupe/sdk/cluster/clustertest"
	"github.com/troupehq/troupe/sdk/remote"
)

// A cluster of two members in one process, sharing an in-memory membership
// (production members plug in another Membership). The grain is activated on its first
// call, on whichever member owns it, and keeps its state between calls.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	membership := clustertest.NewRegistry()
	counter := cluster.Kind{
		Name: "counter",
		Props: actor.PropsFromProducer(func() actor.Actor {
			n := int64(0)
			return actor.ReceiveFunc(func(c actor.Context) {
				if _, ok := c.Message().(*wrapperspb.StringValue); ok {
					n++
					c.Respond(wrapperspb.Int64(n))
				}
			})
		}),
		IdleTimeout: time.Minute,
	}
	var members []*cluster.Cluster
	for range 2 {
		sys, _ := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
		r, _ := remote.New(sys, remote.Config{})
		r.Start()
		c, _ := cluster.New(sys, r, cluster.Config{Membership: membership.Membership(), Kinds: []cluster.Kind{counter}})
		if err := c.Start(ctx); err != nil {
			panic(err)
		}
		defer func() {
			c.Shutdown(ctx)
			sys.Shutdown(ctx)
		}()
		members = append(members, c)
	}

	id := cluster.ClusterIdentity{Kind: "counter", ID: "visits"}
	for _, c := range members {
		n, err := c.Request(ctx, id, wrapperspb.String("hit"))
		fmt.Println(n.(*wrapperspb.Int64Value).GetValue(), err)
	}
	// Output:
	// 1 <nil>
	// 2 <nil>
}
