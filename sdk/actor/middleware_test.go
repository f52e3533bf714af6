package actor

import (
	"errors"
	"maps"
	"reflect"
	"testing"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

func TestReceiverMiddlewareWrapsReceiveInOrder(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	mw := func(name string) ReceiverMiddleware {
		return func(next ReceiveFunc) ReceiveFunc {
			return func(c Context) {
				if _, ok := c.Message().(string); ok {
					rec.Add(name + " before")
					next(c)
					rec.Add(name + " after")
					return
				}
				next(c)
			}
		}
	}
	// A middleware that swallows a message.
	filter := func(next ReceiveFunc) ReceiveFunc {
		return func(c Context) {
			if c.Message() == "secret" {
				return
			}
			next(c)
		}
	}
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		if m, ok := c.Message().(string); ok {
			rec.Add("receive " + m)
		}
	}, WithReceiverMiddleware(mw("outer"), mw("inner"), filter)))
	sys.Send(pid, "secret")
	sys.Send(pid, "x")
	got := names(rec.WaitLen(t, 9))
	want := []string{
		"outer before", "inner before", "inner after", "outer after",
		"outer before", "inner before", "receive x", "inner after", "outer after",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v\nwant %v", got, want)
	}
}

func TestSenderMiddlewareAddsHeaders(t *testing.T) {
	sys := newSystem(t)
	eco := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*ping); ok {
			c.Respond(c.Header().Get("trace-id"))
		}
	}))
	tracing := func(next SenderFunc) SenderFunc {
		return func(c Context, target *PID, env *Envelope) {
			h := maps.Clone(env.Header)
			if h == nil {
				h = Header{}
			}
			h["trace-id"] = "from-" + c.Self().Id
			next(c, target, &Envelope{Message: env.Message, Sender: env.Sender, Header: h})
		}
	}
	front := sys.Spawn(PropsFromFunc(func(c Context) {
		if m, ok := c.Message().(*ping); ok {
			f := c.RequestFuture(eco, m, 0)
			c.ReenterAfter(f, func(res any, err error) { c.Respond(res) })
		}
	}, WithSenderMiddleware(tracing)))
	got, err := sys.Request(testkit.Context(t), front, &ping{})
	if err != nil {
		t.Fatal(err)
	}
	if got != "from-"+front.Id {
		t.Fatalf("header = %v", got)
	}
}

func TestSpawnMiddlewareCanRefuse(t *testing.T) {
	sys := newSystem(t)
	errNope := errors.New("nope")
	var seen []string
	audit := func(next SpawnFunc) SpawnFunc {
		return func(sys *System, id string, props *Props, parent Context) (*PID, error) {
			seen = append(seen, id)
			return next(sys, id, props, parent)
		}
	}
	refuse := func(SpawnFunc) SpawnFunc {
		return func(*System, string, *Props, Context) (*PID, error) { return nil, errNope }
	}
	if _, err := sys.SpawnNamed(PropsFromFunc(echo, WithSpawnMiddleware(audit)), "audited"); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(seen, []string{"audited"}) {
		t.Fatalf("audit saw %v", seen)
	}
	if _, err := sys.SpawnNamed(PropsFromFunc(echo, WithSpawnMiddleware(refuse)), "refused"); !errors.Is(err, errNope) {
		t.Fatalf("err = %v, want the middleware's error", err)
	}
}

func TestPropsWithAddsOptionsToACopy(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	tag := func(name string) ReceiverMiddleware {
		return func(next ReceiveFunc) ReceiveFunc {
			return func(c Context) {
				if _, ok := c.Message().(string); ok {
					rec.Add(name)
				}
				next(c)
			}
		}
	}
	base := PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(string); ok {
			rec.Add("receive")
		}
	}, WithReceiverMiddleware(tag("base")))
	derived := base.With(WithReceiverMiddleware(tag("added")), WithMailbox(MailboxConfig{Capacity: 4}))
	sys.Send(sys.Spawn(derived), "x")
	if got := names(rec.WaitLen(t, 3)); !reflect.DeepEqual(got, []string{"base", "added", "receive"}) {
		t.Fatalf("derived props ran %v", got)
	}
	sys.Send(sys.Spawn(base), "y")
	if got := names(rec.WaitLen(t, 5))[3:]; !reflect.DeepEqual(got, []string{"base", "receive"}) {
		t.Fatalf("the original props changed: %v", got)
	}
}
