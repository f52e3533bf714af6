package actor_test

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
)

type greet struct{ name string }

// A request/response round trip with a stateless actor.
func Example() {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		panic(err)
	}
	defer sys.Shutdown(context.Background())

	greeter := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(greet); ok {
			c.Respond("hello " + m.name)
		}
	}))

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	reply, err := sys.Request(ctx, greeter, greet{name: "world"})
	fmt.Println(reply, err)
	// Output: hello world <nil>
}

// counter is a stateful actor: its fields need no locks because Receive
// handles one message at a time.
type counter struct{ n int }

func (a *counter) Receive(c actor.Context) {
	switch c.Message() {
	case "tick":
		a.n++
	case "get":
		c.Respond(a.n)
	}
}

func ExamplePropsFromProducer() {
	sys, _ := actor.NewSystem(actor.Config{})
	defer sys.Shutdown(context.Background())

	pid, err := sys.SpawnNamed(actor.PropsFromProducer(func() actor.Actor { return &counter{} }), "counter")
	if err != nil {
		panic(err)
	}
	for range 3 {
		sys.Send(pid, "tick")
	}
	n, _ := sys.Request(context.Background(), pid, "get")
	fmt.Println(pid.Id, n)
	// Output: counter 3
}

// A supervisor that restarts a failing child: the panic is recovered, the
// child comes back with fresh state.
func ExampleOneForOneStrategy() {
	sys, _ := actor.NewSystem(actor.Config{
		SupervisorStrategy: actor.OneForOneStrategy(3, time.Minute, actor.DefaultDecider),
		// The panic below would be logged with its stack; keep the example quiet.
		Logger: slog.New(slog.DiscardHandler),
	})
	defer sys.Shutdown(context.Background())

	pid := sys.Spawn(actor.PropsFromProducer(func() actor.Actor {
		return actor.ReceiveFunc(func(c actor.Context) {
			if c.Message() == "fail" {
				panic("something broke")
			}
			if c.Message() == "ping" {
				c.Respond("pong")
			}
		})
	}))
	sys.Send(pid, "fail")
	reply, err := sys.Request(context.Background(), pid, "ping")
	fmt.Println(reply, err)
	// Output: pong <nil>
}

// Watching an actor delivers Terminated when it stops.
func ExampleContext_watch() {
	sys, _ := actor.NewSystem(actor.Config{})
	defer sys.Shutdown(context.Background())

	worker := sys.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	done := make(chan *actor.Terminated, 1)
	sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Watch(worker)
			c.Poison(worker)
		case *actor.Terminated:
			done <- m
		}
	}))
	t := <-done
	fmt.Println(t.Who.Equal(worker), t.Reason == actor.ReasonStopped)
	// Output: true true
}
