package actor

import (
	"errors"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/internal/mpsc"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// lifecycleName maps lifecycle messages to names for order assertions.
func lifecycleName(m any) string {
	switch m := m.(type) {
	case *Started:
		return "started"
	case *Stopping:
		return "stopping"
	case *Stopped:
		return "stopped"
	case *Restarting:
		return "restarting"
	case *Terminated:
		return "terminated " + m.Who.Id + " " + m.Reason.String()
	case string:
		return m
	}
	return fmt.Sprintf("%T", m)
}

func names(items []any) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = lifecycleName(it)
	}
	return out
}

func TestLifecycleOrder(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(recordAll(rec)))
	sys.Send(pid, "hello")
	rec.WaitLen(t, 2)
	stopAndWait(t, sys, pid)
	got := names(rec.Snapshot())
	want := []string{"started", "hello", "stopping", "stopped"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("lifecycle = %v, want %v", got, want)
	}
}

func TestStopDropsQueuedMessagesPoisonProcessesThem(t *testing.T) {
	sys := newSystem(t)
	gate := make(chan struct{})
	entered := make(chan struct{})
	rec := newRecorder()
	blocker := func(c Context) {
		switch m := c.Message().(type) {
		case string:
			if m == "block" {
				close(entered)
				<-gate
			}
			rec.Add(m)
		}
	}

	// Stop overtakes the queued messages: they become dead letters.
	dl := deadLetters(t, sys)
	pid := sys.Spawn(PropsFromFunc(blocker))
	sys.Send(pid, "block")
	<-entered
	sys.Send(pid, "queued-1")
	sys.Send(pid, "queued-2")
	sys.Stop(pid)
	close(gate)
	testkit.Eventually(t, "both queued messages to be dead letters", func() bool { return len(dl.Snapshot()) >= 2 })
	if got := names(rec.Snapshot()); !reflect.DeepEqual(got, []string{"block"}) {
		t.Fatalf("processed %v, want only the message in progress", got)
	}

	// Poison waits its turn: everything sent before it is processed.
	rec2 := newRecorder()
	pid2 := sys.Spawn(PropsFromFunc(recordAll(rec2)))
	for i := range 5 {
		sys.Send(pid2, fmt.Sprintf("m%d", i))
	}
	if err := sys.PoisonAndWait(testkit.Context(t), pid2); err != nil {
		t.Fatal(err)
	}
	got := names(rec2.Snapshot())
	want := []string{"started", "m0", "m1", "m2", "m3", "m4", "stopping", "stopped"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("poisoned actor saw %v, want %v", got, want)
	}
}

func TestStopAndWaitOfUnknownPIDSucceeds(t *testing.T) {
	sys := newSystem(t)
	if err := sys.StopAndWait(testkit.Context(t), NewPID(LocalAddress, "ghost")); err != nil {
		t.Fatalf("StopAndWait(ghost) = %v", err)
	}
}

func TestWatchUnwatchAndTerminated(t *testing.T) {
	sys := newSystem(t)
	target := sys.Spawn(PropsFromFunc(func(Context) {}))
	other := sys.Spawn(PropsFromFunc(func(Context) {}))
	rec := newRecorder()
	watcher := sys.Spawn(PropsFromFunc(func(c Context) {
		switch m := c.Message().(type) {
		case *Started:
			c.Watch(target)
			c.Watch(other)
			c.Watch(NewPID(LocalAddress, "never-existed"))
			c.Unwatch(other)
			c.Respond("ready")
		case string:
			c.Respond(m)
		case *Terminated:
			rec.Add(m)
		}
	}))
	// Round trips order the watch requests before the stops below.
	if _, err := sys.Request(testkit.Context(t), watcher, "sync"); err != nil {
		t.Fatal(err)
	}
	got := rec.WaitLen(t, 1)
	if n := lifecycleName(got[0]); n != "terminated never-existed TERMINATED_REASON_NOT_FOUND" {
		t.Fatalf("first Terminated = %s", n)
	}
	stopAndWait(t, sys, other)
	stopAndWait(t, sys, target)
	got = rec.WaitLen(t, 2)
	if n := lifecycleName(got[1]); n != "terminated "+target.Id+" TERMINATED_REASON_STOPPED" {
		t.Fatalf("second Terminated = %s", n)
	}
	// Nothing for the unwatched actor: a further round trip lets any stray
	// Terminated arrive before we look.
	if _, err := sys.Request(testkit.Context(t), watcher, "sync"); err != nil {
		t.Fatal(err)
	}
	if n := len(rec.Snapshot()); n != 2 {
		t.Fatalf("got %d Terminated messages, want 2: %v", n, names(rec.Snapshot()))
	}
}

func TestChildrenStopBeforeTheirParent(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	child := func(name string) *Props {
		return PropsFromFunc(func(c Context) {
			if _, ok := c.Message().(*Stopped); ok {
				rec.Add(name + " stopped")
			}
		})
	}
	var kids []*PID
	parent := sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			a := c.Spawn(child("a"))
			b, err := c.SpawnNamed(child("b"), "b")
			if err != nil {
				panic(err)
			}
			if _, err := c.SpawnNamed(child("b2"), "b"); err == nil {
				panic("duplicate child name accepted")
			}
			grand := c.Spawn(PropsFromFunc(func(c Context) {
				if _, ok := c.Message().(*Started); ok {
					c.Spawn(child("grandchild"))
				}
				if _, ok := c.Message().(*Stopped); ok {
					rec.Add("c stopped")
				}
			}))
			kids = []*PID{a, b, grand}
		case string:
			c.Respond(len(c.Children()))
		case *Stopped:
			rec.Add("parent stopped")
		}
	}))
	n, err := sys.Request(testkit.Context(t), parent, "count")
	if err != nil || n != 3 {
		t.Fatalf("children = %v, %v; want 3", n, err)
	}
	if kids[1].Id != parent.Id+"/b" {
		t.Fatalf("named child id = %q, want %q", kids[1].Id, parent.Id+"/b")
	}
	stopAndWait(t, sys, parent)
	got := names(rec.Snapshot())
	if len(got) != 5 || got[4] != "parent stopped" {
		t.Fatalf("stop order = %v, want every descendant before the parent", got)
	}
	pos := map[string]int{}
	for i, g := range got {
		pos[g] = i
	}
	if pos["grandchild stopped"] > pos["c stopped"] {
		t.Fatalf("grandchild stopped after its parent: %v", got)
	}
	if n := sys.Registry().Count(); n != 0 {
		t.Fatalf("%d processes left after stopping the tree", n)
	}
}

func TestReceiveTimeout(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			c.SetReceiveTimeout(20 * time.Millisecond)
		case *ReceiveTimeout:
			rec.Add("timeout")
			c.CancelReceiveTimeout()
		case string:
			c.Respond(c.ReceiveTimeout())
		}
	}))
	rec.WaitLen(t, 1)
	d, err := sys.Request(testkit.Context(t), pid, "timeout?")
	if err != nil || d != time.Duration(0) {
		t.Fatalf("ReceiveTimeout after cancel = %v, %v; want 0", d, err)
	}
}

type tick struct{}

func (tick) NotInfluenceReceiveTimeout() {}

func TestReceiveTimeoutIgnoresNonInfluencingMessages(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	// An unbroken stream of ticks, which the actor sends itself, does not
	// hold the timeout off.
	timedOut := false
	sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			c.SetReceiveTimeout(30 * time.Millisecond)
			c.Send(c.Self(), tick{})
		case tick:
			if !timedOut {
				c.Send(c.Self(), tick{})
			}
		case *ReceiveTimeout:
			timedOut = true
			rec.Add("timeout")
		}
	}))
	rec.WaitLen(t, 1)
}

func TestBecomeAndStackedBehaviours(t *testing.T) {
	sys := newSystem(t)
	var base, loud, whisper ReceiveFunc
	base = func(c Context) {
		switch m := c.Message().(type) {
		case string:
			switch m {
			case "loud":
				c.BecomeStacked(loud)
			case "whisper":
				c.Become(whisper)
			default:
				c.Respond("base:" + m)
			}
		}
	}
	loud = func(c Context) {
		if m, ok := c.Message().(string); ok {
			if m == "pop" {
				c.UnbecomeStacked()
				return
			}
			c.Respond("LOUD:" + m)
		}
	}
	whisper = func(c Context) {
		if m, ok := c.Message().(string); ok {
			c.Respond("whisper:" + m)
		}
	}
	pid := sys.Spawn(PropsFromFunc(base))
	ask := func(m string) any {
		t.Helper()
		r, err := sys.Request(testkit.Context(t), pid, m)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	sys.Send(pid, "loud")
	if r := ask("a"); r != "LOUD:a" {
		t.Fatalf("stacked behaviour answered %v", r)
	}
	sys.Send(pid, "pop")
	if r := ask("b"); r != "base:b" {
		t.Fatalf("after unbecome answered %v", r)
	}
	sys.Send(pid, "whisper")
	if r := ask("c"); r != "whisper:c" {
		t.Fatalf("after become answered %v", r)
	}
}

func TestStashAndUnstashAllKeepOrder(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	open := false
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		m, ok := c.Message().(string)
		if !ok {
			return
		}
		switch {
		case m == "open":
			open = true
			c.UnstashAll()
		case !open:
			c.Stash()
		default:
			rec.Add(m)
		}
	}))
	for _, m := range []string{"1", "2", "3", "open", "4"} {
		sys.Send(pid, m)
	}
	got := names(rec.WaitLen(t, 4))
	if !reflect.DeepEqual(got, []string{"1", "2", "3", "4"}) {
		t.Fatalf("order = %v, want stashed messages first, in order", got)
	}
}

func TestStashedMessagesBecomeDeadLettersOnStop(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(string); ok {
			c.Stash()
		}
	}))
	sys.Send(pid, "kept-1")
	sys.Send(pid, "kept-2")
	if err := sys.PoisonAndWait(testkit.Context(t), pid); err != nil {
		t.Fatal(err)
	}
	got := dl.WaitLen(t, 2)
	for _, g := range got[:2] {
		if e := g.(*DeadLetterEvent); e.PID.Id != pid.Id {
			t.Fatalf("dead letter for %v", e.PID)
		}
	}
}

func TestReenterAfterRunsOnTheActorWithTheOriginalSender(t *testing.T) {
	sys := newSystem(t)
	slow := make(chan struct{})
	backend := func(c Context) {
		if m, ok := c.Message().(*ping); ok {
			if m.n == 1 {
				<-slow
			}
			c.Respond(&pong{n: m.n * 10})
		}
	}
	backends := []*PID{sys.Spawn(PropsFromFunc(backend)), sys.Spawn(PropsFromFunc(backend))}
	// The front end answers each request with a backend's answer, without
	// blocking: while request 1 waits, request 2 is served.
	front := sys.Spawn(PropsFromFunc(func(c Context) {
		if m, ok := c.Message().(*ping); ok {
			f := c.RequestFuture(backends[m.n-1], m, time.Minute)
			c.ReenterAfter(f, func(res any, err error) {
				if err != nil {
					c.Respond(err)
					return
				}
				c.Respond(res)
			})
		}
	}))
	first := sys.RequestFuture(front, &ping{n: 1}, time.Minute)
	second, err := sys.Request(testkit.Context(t), front, &ping{n: 2})
	if err != nil || second.(*pong).n != 20 {
		t.Fatalf("second = %v, %v", second, err)
	}
	close(slow)
	res, err := first.Result()
	if err != nil || res.(*pong).n != 10 {
		t.Fatalf("first = %v, %v", res, err)
	}
}

// A spawn that fails returns a nil PID, and messages to a nil PID are dead
// letters: watching or unwatching one must not crash the actor.
func TestWatchAndUnwatchOfNilPIDDoNotFailTheActor(t *testing.T) {
	sys := newSystem(t)
	events := supervisorEvents(t, sys)
	pid := sys.Spawn(PropsFromProducer(func() Actor {
		n := 0
		return ReceiveFunc(func(c Context) {
			switch c.Message() {
			case "watch":
				n++
				c.Watch(nil)
			case "unwatch":
				n++
				c.Unwatch(nil)
			case "get":
				c.Respond(n)
			}
		})
	}))
	sys.Send(pid, "watch")
	sys.Send(pid, "unwatch")
	if n := get(t, sys, pid); n != 2 || len(events.Snapshot()) != 0 {
		t.Fatalf("count = %d, want 2; supervisor events: %v", n, events.Snapshot())
	}
}

// ReenterAfter's cont never runs once the actor has begun to stop, also
// while it waits for a child to stop: it has had its Stopping.
func TestReenterAfterDoesNotRunAfterStopping(t *testing.T) {
	sys := newSystem(t)
	gate := make(chan struct{})
	childStopping := make(chan struct{})
	rec := newRecorder()
	f := sys.RequestFuture(sys.Spawn(PropsFromFunc(func(Context) {})), "no answer", -1)
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		switch m := c.Message().(type) {
		case *Started:
			rec.Add(m)
			c.Spawn(PropsFromFunc(func(c Context) {
				if _, ok := c.Message().(*Stopping); ok {
					close(childStopping)
					<-gate
				}
			}))
			c.ReenterAfter(f, func(any, error) { rec.Add("cont") })
		case *Stopping, *Stopped:
			rec.Add(m)
		}
	}))
	rec.WaitLen(t, 1)
	sys.Stop(pid)
	<-childStopping // the actor has had Stopping and waits for its child
	f.Fail(errors.New("done"))
	close(gate)
	testkit.Eventually(t, "the actor to stop", func() bool { _, ok := sys.Registry().Get(pid.Id); return !ok })
	if got, want := names(rec.WaitLen(t, 3)), []string{"started", "stopping", "stopped"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("actor saw %v, want %v", got, want)
	}
}

// A ReceiveTimeout the timer queued while the actor was busy is not
// delivered after the actor cancelled its receive timeout.
func TestNoReceiveTimeoutAfterCancel(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	gate := make(chan struct{})
	marks := make(chan mpsc.Mark[any], 1)
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *ReceiveTimeout:
			rec.Add("timeout")
		case string:
			switch c.Message() {
			case "block":
				c.SetReceiveTimeout(time.Millisecond)
				marks <- c.(*actorContext).mb.user.Mark()
				<-gate
				c.CancelReceiveTimeout()
			default:
				rec.Add(c.Message())
			}
		}
	}))
	sys.Send(pid, "block")
	mark := <-marks
	mb := &pid.ref.Load().p.(*actorContext).mb
	testkit.Eventually(t, "the timer to queue a ReceiveTimeout", func() bool { return mb.user.Moved(mark) })
	close(gate)
	sys.Send(pid, "after")
	if got := rec.WaitLen(t, 1); got[0] != "after" {
		t.Fatalf("after CancelReceiveTimeout the actor got %v", got)
	}
}
