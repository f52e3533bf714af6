package remote_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote"
)

// start returns a system reachable over gRPC on a loopback port, and a
// function that shuts both down.
func start() (*actor.System, *remote.Remote, func(context.Context)) {
	sys, _ := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	r, _ := remote.New(sys, remote.Config{BindAddress: "127.0.0.1:0"})
	if err := r.Start(); err != nil {
		panic(err)
	}
	return sys, r, func(ctx context.Context) {
		r.Shutdown(ctx)
		sys.Shutdown(ctx)
	}
}

// Two systems: a PID of the other one is used like a local PID.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, _, stopAlice := start()
	defer stopAlice(ctx)
	bob, rb, stopBob := start()
	defer stopBob(ctx)

	// Bob hosts a greeter.
	bob.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Respond(wrapperspb.String("hello " + m.GetValue()))
		}
	}), "greeter")

	// Alice calls it by address and name.
	greeter := actor.NewPID(rb.Address(), "greeter")
	reply, err := alice.Request(ctx, greeter, wrapperspb.String("alice"))
	fmt.Println(reply.(*wrapperspb.StringValue).GetValue(), err)
	// Output: hello alice <nil>
}

// Spawning a registered kind on another system.
func ExampleRemote_SpawnNamed() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	alice, ra, stopAlice := start()
	defer stopAlice(ctx)
	_, rb, stopBob := start()
	defer stopBob(ctx)
	rb.Register("echo", actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			c.Respond(m)
		}
	}))

	pid, err := ra.SpawnNamed(ctx, rb.Address(), "echo", "echo-1")
	if err != nil {
		panic(err)
	}
	reply, _ := alice.Request(ctx, pid, wrapperspb.String("ping"))
	fmt.Println(pid.Id, reply.(*wrapperspb.StringValue).GetValue())
	// Output: echo-1 ping
}
