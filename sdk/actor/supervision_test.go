package actor

import (
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// counter counts "inc" messages, panics on "boom" and answers "get".
type counter struct {
	n       int
	started *recorder
}

func (a *counter) Receive(c Context) {
	switch m := c.Message().(type) {
	case *Started:
		if a.started != nil {
			a.started.Add(c.Self().Id)
		}
	case string:
		switch m {
		case "inc":
			a.n++
		case "boom":
			panic(errors.New("boom"))
		case "get":
			c.Respond(a.n)
		}
	}
}

func counterProps(started *recorder, opts ...PropsOption) *Props {
	return PropsFromProducer(func() Actor { return &counter{started: started} }, opts...)
}

// supervisorEvents records supervisor decisions.
func supervisorEvents(t *testing.T, sys *System) *recorder {
	r := newRecorder()
	sub := Subscribe(sys.EventStream(), func(e *SupervisorEvent) { r.Add(e) })
	t.Cleanup(sub.Unsubscribe)
	return r
}

// directives waits for n supervisor decisions and returns them.
func directives(t *testing.T, events *recorder, n int) []Directive {
	t.Helper()
	var got []Directive
	testkit.Await(t, testkit.Timeout, fmt.Sprintf("%d supervisor decisions", n), func() string {
		got = got[:0]
		for _, e := range events.Snapshot() {
			got = append(got, e.(*SupervisorEvent).Directive)
		}
		if len(got) >= n {
			return ""
		}
		return fmt.Sprintf("have %v", got)
	})
	return got
}

func get(t *testing.T, sys *System, pid *PID) int {
	t.Helper()
	r, err := sys.Request(testkit.Context(t), pid, "get")
	if err != nil {
		t.Fatal(err)
	}
	return r.(int)
}

func TestPanicRestartsWithFreshState(t *testing.T) {
	sys := newSystem(t)
	events := supervisorEvents(t, sys)
	started := newRecorder()
	pid := sys.Spawn(counterProps(started))
	sys.Send(pid, "inc")
	sys.Send(pid, "inc")
	if n := get(t, sys, pid); n != 2 {
		t.Fatalf("count = %d, want 2", n)
	}
	sys.Send(pid, "boom")
	sys.Send(pid, "inc") // queued behind the failure: kept across the restart
	if n := get(t, sys, pid); n != 1 {
		t.Fatalf("count after restart = %d, want 1 (fresh state plus the queued inc)", n)
	}
	if got := len(started.WaitLen(t, 2)); got != 2 {
		t.Fatalf("Started %d times, want 2", got)
	}
	ev := events.WaitLen(t, 1)[0].(*SupervisorEvent)
	if ev.Directive != DirectiveRestart || !ev.Child.Equal(pid) || ev.Reason.(error).Error() != "boom" {
		t.Fatalf("event = %+v", ev)
	}
}

func TestResumeKeepsState(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(10, time.Minute, func(any) Directive {
		return DirectiveResume
	})})
	pid := sys.Spawn(counterProps(nil))
	sys.Send(pid, "inc")
	sys.Send(pid, "boom")
	sys.Send(pid, "inc")
	if n := get(t, sys, pid); n != 2 {
		t.Fatalf("count after resume = %d, want 2", n)
	}
}

func TestStopDirective(t *testing.T) {
	rec := newRecorder()
	sys := newSystem(t)
	parent := sys.Spawn(PropsFromFunc(func(c Context) {
		switch m := c.Message().(type) {
		case *Started:
			child := c.Spawn(counterProps(nil))
			c.Watch(child)
			c.Send(child, "boom")
		case *Terminated:
			rec.Add(m)
		}
	}, WithSupervisor(OneForOneStrategy(10, time.Minute, func(any) Directive { return DirectiveStop }))))
	_ = parent
	term := rec.WaitLen(t, 1)[0].(*Terminated)
	if term.Reason != ReasonStopped {
		t.Fatalf("Terminated = %v", term)
	}
}

func TestRestartLimitStopsTheChild(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(2, time.Minute, DefaultDecider)})
	events := supervisorEvents(t, sys)
	pid := sys.Spawn(counterProps(nil))
	for range 3 {
		sys.Send(pid, "boom")
	}
	got := directives(t, events, 3)
	want := []Directive{DirectiveRestart, DirectiveRestart, DirectiveStop}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("directives = %v, want %v", got, want)
	}
	testkit.Eventually(t, "the child to stop", func() bool { return sys.Registry().Count() == 0 })
}

func TestEscalateReachesTheGrandparent(t *testing.T) {
	sys := newSystem(t)
	events := supervisorEvents(t, sys)
	started := newRecorder()
	var child *PID
	ready := make(chan struct{})
	// The middle actor escalates whatever its child does; the top-level
	// supervision (the system's default) then restarts the middle actor,
	// which restarts its child with it.
	middle := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			child = c.Spawn(counterProps(started))
			select {
			case <-ready:
			default:
				close(ready)
			}
		}
	}, WithSupervisor(OneForOneStrategy(10, time.Minute, func(any) Directive { return DirectiveEscalate }))))
	<-ready
	started.WaitLen(t, 1)
	sys.Send(child, "boom")
	got := events.WaitLen(t, 2)
	first, second := got[0].(*SupervisorEvent), got[1].(*SupervisorEvent)
	if first.Directive != DirectiveEscalate || second.Directive != DirectiveRestart || !second.Child.Equal(middle) {
		t.Fatalf("events = %+v, %+v; want escalate by middle, then middle restarted", first, second)
	}
	// The restarted middle actor spawned a new child.
	started.WaitLen(t, 2)
}

func TestAllForOneRestartsSiblings(t *testing.T) {
	sys := newSystem(t)
	started := newRecorder()
	kids := make(chan []*PID, 1)
	sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			kids <- []*PID{c.Spawn(counterProps(started)), c.Spawn(counterProps(started))}
		}
	}, WithSupervisor(AllForOneStrategy(10, time.Minute, DefaultDecider))))
	pids := <-kids
	started.WaitLen(t, 2)
	sys.Send(pids[1], "inc")
	if n := get(t, sys, pids[1]); n != 1 {
		t.Fatalf("sibling count = %d", n)
	}
	sys.Send(pids[0], "boom")
	started.WaitLen(t, 4)
	if n := get(t, sys, pids[1]); n != 0 {
		t.Fatalf("sibling count after all-for-one restart = %d, want 0", n)
	}
}

func TestExponentialBackoffRestartsAfterDelay(t *testing.T) {
	s := ExponentialBackoffStrategy(10*time.Millisecond, 80*time.Millisecond, time.Minute).(*backoffStrategy)
	for n, want := range map[int]time.Duration{1: 10 * time.Millisecond, 2: 20 * time.Millisecond, 3: 40 * time.Millisecond, 4: 80 * time.Millisecond, 9: 80 * time.Millisecond} {
		if got := s.delay(n); got != want {
			t.Errorf("delay(%d) = %v, want %v", n, got, want)
		}
	}
	sys := newSystem(t, Config{SupervisorStrategy: s})
	started := newRecorder()
	pid := sys.Spawn(counterProps(started))
	started.WaitLen(t, 1)
	sys.Send(pid, "inc")
	sys.Send(pid, "boom")
	sys.Send(pid, "boom") // queued: processed after the delayed restart
	started.WaitLen(t, 3)
	if n := get(t, sys, pid); n != 0 {
		t.Fatalf("count after backoff restarts = %d", n)
	}
}

func TestPanicInStartedIsSupervised(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(3, time.Minute, DefaultDecider)})
	events := supervisorEvents(t, sys)
	sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			panic("cannot start")
		}
	}))
	got := events.WaitLen(t, 4)
	if d := got[3].(*SupervisorEvent).Directive; d != DirectiveStop {
		t.Fatalf("after 3 restarts the directive was %v, want stop", d)
	}
	testkit.Eventually(t, "the actor to stop", func() bool { return sys.Registry().Count() == 0 })
}

func TestPanicWhileStoppingDoesNotStopTheStop(t *testing.T) {
	sys := newSystem(t)
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Stopping, *Stopped:
			panic("bad cleanup")
		}
	}))
	stopAndWait(t, sys, pid)
}

func TestDirectiveString(t *testing.T) {
	for d, want := range map[Directive]string{DirectiveResume: "resume", DirectiveRestart: "restart",
		DirectiveStop: "stop", DirectiveEscalate: "escalate", Directive(9): "Directive(9)"} {
		if d.String() != want {
			t.Errorf("%d.String() = %q, want %q", int(d), d.String(), want)
		}
	}
}

// An all-for-one restart of a sibling that must first wait for its own
// children to stop: between its Restarting and the fresh instance's Started,
// user messages wait, as they do for the failed child; the old instance has
// said goodbye and must not handle them.
func TestAllForOneSiblingHandlesNoMessageBetweenRestartingAndStarted(t *testing.T) {
	sys := newSystem(t)
	gate := make(chan struct{})
	grandchildStopping := make(chan struct{})
	rec := newRecorder()
	slowToStop := PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Stopping); ok {
			close(grandchildStopping)
			<-gate
		}
	})
	sibling := PropsFromFunc(func(c Context) {
		switch m := c.Message().(type) {
		case *Started:
			rec.Add(m)
			if len(rec.Snapshot()) == 1 { // the first instance only
				c.Spawn(slowToStop)
			}
		case *Restarting, string:
			rec.Add(m)
		}
	})
	kids := make(chan []*PID, 1)
	sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			kids <- []*PID{c.Spawn(counterProps(nil)), c.Spawn(sibling)}
		}
	}, WithSupervisor(AllForOneStrategy(10, time.Minute, DefaultDecider))))
	pids := <-kids
	rec.WaitLen(t, 1)
	sys.Send(pids[0], "boom")
	<-grandchildStopping // the sibling is restarting, waiting for its child
	mb := &pids[1].ref.Load().p.(*actorContext).mb
	idle := func() bool { return mb.status.Load() == mailboxIdle }
	testkit.Eventually(t, "the restarting sibling to go idle", idle)
	sys.Send(pids[1], "hello")
	testkit.Eventually(t, "the sibling to go idle after the send", idle)
	close(gate)
	got := names(rec.WaitLen(t, 4))
	want := []string{"started", "restarting", "started", "hello"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sibling saw %v, want %v", got, want)
	}
}

// A common pattern: an actor watches its workers and replaces each that
// stops. When that actor restarts, its restart stops the workers; the
// replacements the old instance spawns on their Terminated must not hold the
// restart up forever.
func TestRestartOfAnActorThatReplacesStoppedWorkersCompletes(t *testing.T) {
	sys := newSystem(t)
	started := newRecorder()
	worker := PropsFromFunc(func(Context) {})
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			started.Add(c.Self().Id)
			c.Watch(c.Spawn(worker))
		case *Terminated:
			if pid := c.Spawn(worker); pid != nil {
				c.Watch(pid)
			}
		case string:
			switch c.Message() {
			case "boom":
				panic("boom")
			case "get":
				c.Respond(len(c.Children()))
			}
		}
	}))
	started.WaitLen(t, 1)
	sys.Send(pid, "boom")
	r, err := sys.Request(testkit.Context(t), pid, "get")
	if err != nil || r != 1 {
		t.Fatalf("after the restart: %v, %v; want 1 worker", r, err)
	}
	if n := len(started.Snapshot()); n != 2 {
		t.Fatalf("Started %d times, want 2", n)
	}
}

// A failure escalated to a supervisor that is then resumed: the child that
// failed is resumed with it, rather than left suspended for ever with its
// mailbox filling up.
func TestEscalatedFailureResumedAboveResumesTheChild(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(10, time.Minute, func(any) Directive { return DirectiveResume })})
	kid := make(chan *PID, 1)
	sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			kid <- c.Spawn(counterProps(nil))
		}
	}, WithSupervisor(OneForOneStrategy(10, time.Minute, func(any) Directive { return DirectiveEscalate }))))
	child := <-kid
	sys.Send(child, "inc")
	sys.Send(child, "boom")
	sys.Send(child, "inc")
	if n := get(t, sys, child); n != 2 {
		t.Fatalf("child count = %d, want 2", n)
	}
}

// nopSupervisor is a Supervisor for calling a strategy directly.
type nopSupervisor struct{}

func (nopSupervisor) Children() []*PID         { return nil }
func (nopSupervisor) EscalateFailure(any, any) {}
func (nopSupervisor) RestartChildren(...*PID)  {}
func (nopSupervisor) StopChildren(...*PID)     {}
func (nopSupervisor) ResumeChildren(...*PID)   {}

// The backoff starts over only after a quiet period of reset without
// failures: failures that keep coming, each within reset of the one before,
// keep doubling the delay even when the first of them are older than reset.
func TestExponentialBackoffStartsOverOnlyAfterAQuietPeriod(t *testing.T) {
	sys := newSystem(t)
	s := ExponentialBackoffStrategy(time.Hour, 100*time.Hour, time.Minute) // the restarts never come
	now := time.Now()
	for _, tc := range []struct {
		ago  []time.Duration // earlier failures, oldest first
		want int             // failures that count for the delay, this one included
	}{
		{[]time.Duration{150 * time.Second, 100 * time.Second, 50 * time.Second}, 4}, // gaps of 50s < 1m
		{[]time.Duration{10 * time.Minute, 9 * time.Minute}, 1},                      // quiet for 9m
	} {
		stats := &RestartStatistics{}
		for _, a := range tc.ago {
			stats.failures = append(stats.failures, now.Add(-a))
		}
		s.HandleFailure(sys, nopSupervisor{}, NewPID(LocalAddress, "x"), stats, "boom", nil)
		if got := stats.FailureCount(); got != tc.want {
			t.Errorf("failures %v ago: %d count for the delay, want %d", tc.ago, got, tc.want)
		}
	}
}

// A decider that panics on a top-level actor's failure must not take the
// whole process down: the runtime recovers panics of user code everywhere
// else. The actor is stopped, as when a failure is escalated past the top.
func TestPanickingDeciderAtTheTopStopsTheActor(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(10, time.Minute, func(any) Directive { panic("bad decider") })})
	pid := sys.Spawn(counterProps(nil))
	sys.Send(pid, "boom")
	testkit.Eventually(t, "the actor to stop", func() bool { _, ok := sys.Registry().Get(pid.Id); return !ok })
}

// A Terminated of a watched actor that is not a child, arriving while the
// watcher restarts (here while it waits for its child to stop), is for the
// fresh instance, after its Started: the old instance has had its
// Restarting. The watch outlives the restart.
func TestTerminatedDuringARestartReachesTheFreshInstanceAfterStarted(t *testing.T) {
	sys := newSystem(t)
	gate := make(chan struct{})
	childStopping := make(chan struct{})
	rec := newRecorder()
	watchedGone := newRecorder()
	watched := make(chan *PID, 1)
	// The watched actor is the child of another actor, which hears of its
	// end only after every watcher has been told.
	sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			pid := c.Spawn(PropsFromFunc(func(Context) {}))
			c.Watch(pid)
			watched <- pid
		case *Terminated:
			watchedGone.Add(c.Message())
		}
	}))
	target := <-watched
	var instances atomic.Int32
	pid := sys.Spawn(PropsFromProducer(func() Actor {
		n := instances.Add(1)
		return ReceiveFunc(func(c Context) {
			switch m := c.Message().(type) {
			case *Started:
				if n == 1 {
					c.Spawn(PropsFromFunc(func(c Context) {
						if _, ok := c.Message().(*Stopping); ok {
							close(childStopping)
							<-gate
						}
					}))
					c.Watch(target)
				}
				rec.Add(fmt.Sprintf("started %d", n))
			case *Restarting:
				rec.Add(fmt.Sprintf("restarting %d", n))
			case *Terminated:
				rec.Add(fmt.Sprintf("%s to %d", lifecycleName(m), n))
			case string:
				panic(m)
			}
		})
	}))
	rec.WaitLen(t, 1)
	sys.Send(pid, "boom")
	<-childStopping // restarting, waiting for its child
	sys.Stop(target)
	// The watcher has the Terminated queued before its child's, which comes
	// only once the gate opens.
	watchedGone.WaitLen(t, 1)
	close(gate)
	got := names(rec.WaitLen(t, 4))
	want := []string{"started 1", "restarting 1", "started 2", "terminated " + target.Id + " TERMINATED_REASON_STOPPED to 2"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("watcher saw %v, want %v", got, want)
	}
}

// A receive timeout belongs to the instance that set it: after a restart
// the fresh instance has none, and gets no ReceiveTimeout, until it sets
// its own. The old instance cannot set one once it has had its Restarting.
func TestNoReceiveTimeoutAfterRestart(t *testing.T) {
	sys := newSystem(t)
	timeouts := newRecorder()
	var instances atomic.Int32
	pid := sys.Spawn(PropsFromProducer(func() Actor {
		n := instances.Add(1)
		return ReceiveFunc(func(c Context) {
			switch c.Message().(type) {
			case *Started:
				if n == 1 {
					c.SetReceiveTimeout(time.Millisecond)
				}
			case *Restarting:
				c.SetReceiveTimeout(time.Millisecond)
			case *ReceiveTimeout:
				timeouts.Add(n)
			case string:
				switch c.Message() {
				case "boom":
					panic("boom")
				case "get":
					c.Respond(c.ReceiveTimeout())
				case "arm":
					c.SetReceiveTimeout(time.Millisecond)
				}
			}
		})
	}))
	timeouts.WaitLen(t, 1)
	sys.Send(pid, "boom")
	if d, err := sys.Request(testkit.Context(t), pid, "get"); err != nil || d != time.Duration(0) {
		t.Fatalf("the fresh instance's ReceiveTimeout() = %v, %v; want 0", d, err)
	}
	for _, n := range timeouts.Snapshot() {
		if n != int32(1) {
			t.Fatalf("a ReceiveTimeout reached instance %v, which set none", n)
		}
	}
	// The fresh instance's own receive timeout works.
	sys.Send(pid, "arm")
	testkit.Eventually(t, "a ReceiveTimeout for the fresh instance", func() bool {
		got := timeouts.Snapshot()
		return got[len(got)-1] == int32(2)
	})
}

// resumeNoInstance resumes after a failure of the producer (its panic value
// is "no instance") and restarts after any other.
func resumeNoInstance(reason any) Directive {
	if reason == "no instance" {
		return DirectiveResume
	}
	return DirectiveRestart
}

// A producer that fails while its actor restarts leaves no instance to
// resume: a Resume restarts the actor (once, counted as a restart), which
// then serves its queued messages with a fresh instance. The old instance
// has had its Restarting once.
func TestResumeAfterTheProducerFailedOnRestartRestartsTheActor(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(10, time.Minute, resumeNoInstance)})
	events := supervisorEvents(t, sys)
	started := newRecorder()
	restarting := newRecorder()
	var calls atomic.Int32
	pid := sys.Spawn(PropsFromProducer(func() Actor {
		if calls.Add(1) == 2 {
			panic("no instance")
		}
		a := &counter{started: started}
		return ReceiveFunc(func(c Context) {
			if _, ok := c.Message().(*Restarting); ok {
				restarting.Add(a.n)
			}
			a.Receive(c)
		})
	}))
	started.WaitLen(t, 1)
	sys.Send(pid, "inc")
	sys.Send(pid, "boom")
	sys.Send(pid, "inc") // queued behind the failures: for the fresh instance
	if n := get(t, sys, pid); n != 1 {
		t.Fatalf("count = %d, want 1 (fresh state plus the queued inc)", n)
	}
	if n := len(started.Snapshot()); n != 2 || calls.Load() != 3 {
		t.Fatalf("Started %d times from %d producer calls, want 2 from 3", n, calls.Load())
	}
	if n := len(restarting.Snapshot()); n != 1 {
		t.Fatalf("the old instance had Restarting %d times, want once", n)
	}
	if got, want := directives(t, events, 2), []Directive{DirectiveRestart, DirectiveRestart}; !reflect.DeepEqual(got, want) {
		t.Fatalf("directives = %v, want %v", got, want)
	}
}

// failingOnRestart returns props whose producer makes a counter on its
// first call and panics with "no instance" on every later one; calls
// counts them.
func failingOnRestart(calls *atomic.Int32) *Props {
	return PropsFromProducer(func() Actor {
		if calls.Add(1) > 1 {
			panic("no instance")
		}
		return &counter{}
	})
}

// A producer that always fails on restart, under a decider that resumes:
// the restarts it takes count, and once the strategy's limit is exceeded
// the actor stops.
func TestProducerThatAlwaysFailsOnRestartEndsInStop(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(2, time.Minute, resumeNoInstance)})
	events := supervisorEvents(t, sys)
	var calls atomic.Int32
	pid := sys.Spawn(failingOnRestart(&calls))
	sys.Send(pid, "boom")
	if got, want := directives(t, events, 3), []Directive{DirectiveRestart, DirectiveRestart, DirectiveStop}; !reflect.DeepEqual(got, want) {
		t.Fatalf("directives = %v, want %v", got, want)
	}
	stopAndWait(t, sys, pid)
	if _, ok := sys.Registry().Get(pid.Id); ok {
		t.Fatal("the actor is still registered")
	}
}

// resumeNoInstanceUnlimited is a strategy of one's own, without restart
// limits: it restarts a failed child, and resumes one whose producer failed.
type resumeNoInstanceUnlimited struct{}

func (resumeNoInstanceUnlimited) HandleFailure(_ *System, sup Supervisor, child *PID, _ *RestartStatistics, reason, _ any) {
	if resumeNoInstance(reason) == DirectiveResume {
		sup.ResumeChildren(child)
		return
	}
	sup.RestartChildren(child)
}

// Under a strategy of one's own that resumes an actor whose producer failed
// on restart, the runtime restarts that actor, for as long as the strategy
// says so; StopAndWait still ends it.
func TestResumeOfAnActorWhoseProducerKeepsFailingRetriesUntilStopped(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: resumeNoInstanceUnlimited{}})
	var calls atomic.Int32
	pid := sys.Spawn(failingOnRestart(&calls))
	sys.Send(pid, "boom")
	testkit.Eventually(t, "the producer to be retried", func() bool { return calls.Load() > 3 })
	stopAndWait(t, sys, pid)
	if _, ok := sys.Registry().Get(pid.Id); ok {
		t.Fatal("the actor is still registered")
	}
}

// recordingSupervisor is a Supervisor with two children that records what
// a strategy asks of it.
type recordingSupervisor struct {
	nopSupervisor
	children []*PID
	calls    []string
}

func (s *recordingSupervisor) Children() []*PID { return s.children }
func (s *recordingSupervisor) RestartChildren(pids ...*PID) {
	s.calls = append(s.calls, fmt.Sprintf("restart %d", len(pids)))
}
func (s *recordingSupervisor) StopChildren(pids ...*PID) {
	s.calls = append(s.calls, fmt.Sprintf("stop %d", len(pids)))
}
func (s *recordingSupervisor) ResumeChildren(pids ...*PID) {
	s.calls = append(s.calls, fmt.Sprintf("resume %d", len(pids)))
}

// An all-for-one Resume of a child whose producer failed on restart
// restarts that child only, as the Resume would have left its siblings
// alone, and counts as a restart: past the limit, that child only stops.
func TestAllForOneResumeOfAChildWithoutInstanceRestartsThatChildOnly(t *testing.T) {
	sys := newSystem(t)
	s := AllForOneStrategy(1, time.Minute, func(any) Directive { return DirectiveResume })
	child := NewPID(LocalAddress, "a")
	sup := &recordingSupervisor{children: []*PID{child, NewPID(LocalAddress, "b")}}
	stats := &RestartStatistics{noInstance: true}
	s.HandleFailure(sys, sup, child, stats, "no instance", nil)
	s.HandleFailure(sys, sup, child, stats, "no instance", nil)
	if want := []string{"restart 1", "stop 1"}; !reflect.DeepEqual(sup.calls, want) {
		t.Fatalf("strategy asked %v, want %v", sup.calls, want)
	}
}

// Under AllForOneStrategy, a child whose producer fails on restart may
// restart again (its sibling's failure restarts it) while its supervisor
// decides on the producer's failure: the decision must not read what the
// child's next restart writes (run with -race). Here a's producer fails
// once its sibling b has failed too, so that b's restart of both is queued
// at a; the producer's next call waits until the supervisor decides.
func TestAllForOneProducerFailureDecidedWhileTheChildRestartsAgain(t *testing.T) {
	sys := newSystem(t)
	var calls atomic.Int32
	gate := make(chan struct{})
	bothDecided := make(chan struct{})
	var once sync.Once
	var booms atomic.Int32
	firstDecided := make(chan struct{})
	aProps := PropsFromProducer(func() Actor {
		switch calls.Add(1) {
		case 2:
			<-bothDecided
			panic("no instance")
		case 3:
			<-gate
		}
		return &counter{}
	})
	decider := func(reason any) Directive {
		if reason == "no instance" {
			once.Do(func() { close(gate) })
			return DirectiveResume // a Restart of a alone, as it has no instance
		}
		if n := booms.Add(1); n == 1 {
			close(firstDecided)
		} else if n == 2 {
			close(bothDecided)
		}
		return DirectiveRestart
	}
	kids := make(chan []*PID, 1)
	parent := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			a, _ := c.SpawnNamed(aProps, "a")
			b, _ := c.SpawnNamed(counterProps(nil), "b")
			kids <- []*PID{a, b}
		}
	}, WithSupervisor(AllForOneStrategy(100, time.Minute, decider))))
	ks := <-kids
	sys.Send(ks[0], "boom")
	<-firstDecided
	sys.Send(ks[1], "boom")
	for _, k := range ks { // each has an instance again
		get(t, sys, k)
	}
	stopAndWait(t, sys, parent)
}
