package remote

import (
	"errors"
	"testing"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// A member reports the end of its own actors only: a Terminated that C
// sends about B's actor is dropped, and A's watch of it stays in place.
func TestAPeerCannotReportAnotherMembersActorTerminated(t *testing.T) {
	a, b, c := startNode(t, fastConfig()), startNode(t, fastConfig()), startNode(t, fastConfig())
	target, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "target")
	if err != nil {
		t.Fatal(err)
	}
	target = actor.NewPID(b.r.Address(), target.Id)
	var got testkit.Recorder[*actor.Terminated]
	ready, after := make(chan struct{}), make(chan struct{})
	watcher, err := a.sys.SpawnNamed(actor.PropsFromFunc(func(ctx actor.Context) {
		switch m := ctx.Message().(type) {
		case *actor.Started:
			ctx.Watch(target)
			ctx.Request(target, str("sync")) // after the Watch, on the same stream
		case *actor.Terminated:
			got.Add(m)
		case *wrapperspb.StringValue:
			if m.GetValue() == "sync" {
				close(ready)
			} else {
				close(after)
			}
		}
	}), "watcher")
	if err != nil {
		t.Fatal(err)
	}
	<-ready
	watcher = actor.NewPID(a.r.Address(), watcher.Id)

	dl := a.deadLetters(t)
	c.sys.SendSystemMessage(watcher, &actor.Terminated{Who: target, Reason: actor.ReasonStopped})
	c.sys.Send(watcher, str("after")) // after the forgery, on the same stream
	<-after
	if s := got.Snapshot(); len(s) > 0 {
		t.Fatalf("the watcher got %v from another member", s[0])
	}
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, ErrProtocol) {
		t.Fatalf("dead letter reason = %v, want ErrProtocol", e.Reason)
	}
	// The real end still reaches the watcher.
	if err := b.sys.StopAndWait(testkit.Context(t), target); err != nil {
		t.Fatal(err)
	}
	if m := got.WaitLen(t, 1)[0]; !m.Who.Equal(target) || m.Reason != actor.ReasonStopped {
		t.Fatalf("Terminated = %v, want %v stopped", m, target)
	}
}
