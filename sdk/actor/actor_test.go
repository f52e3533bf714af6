package actor

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

type ping struct{ n int }
type pong struct{ n int }

func echo(c Context) {
	if m, ok := c.Message().(*ping); ok {
		c.Respond(&pong{n: m.n})
	}
}

func TestRequestRoundTrip(t *testing.T) {
	sys := newSystem(t)
	pid := sys.Spawn(PropsFromFunc(echo))
	for i := range 100 {
		reply, err := sys.Request(testkit.Context(t), pid, &ping{n: i})
		if err != nil {
			t.Fatal(err)
		}
		if p, ok := reply.(*pong); !ok || p.n != i {
			t.Fatalf("reply = %#v, want pong %d", reply, i)
		}
	}
}

func TestSpawnNamedRejectsDuplicateName(t *testing.T) {
	sys := newSystem(t)
	props := PropsFromFunc(echo)
	pid, err := sys.SpawnNamed(props, "echo")
	if err != nil {
		t.Fatal(err)
	}
	if pid.Id != "echo" || pid.Address != LocalAddress {
		t.Fatalf("pid = %v, want nonhost/echo", pid)
	}
	_, err = sys.SpawnNamed(props, "echo")
	if !errors.Is(err, ErrNameExists) || !strings.Contains(err.Error(), `"echo"`) {
		t.Fatalf("second spawn: err = %v, want ErrNameExists naming echo", err)
	}
	// The first actor is unaffected.
	if _, err := sys.Request(testkit.Context(t), pid, &ping{}); err != nil {
		t.Fatalf("request after failed duplicate spawn: %v", err)
	}
}

func TestSpawnFailsCleanlyOnBadProps(t *testing.T) {
	sys := newSystem(t)
	if _, err := sys.SpawnNamed(&Props{}, "none"); err == nil {
		t.Error("spawn with empty props succeeded")
	}
	if _, err := sys.SpawnNamed(PropsFromProducer(func() Actor { panic("boom") }), "panics"); err == nil ||
		!strings.Contains(err.Error(), "boom") {
		t.Errorf("spawn with panicking producer: err = %v, want one mentioning the panic", err)
	}
	if _, err := sys.SpawnNamed(PropsFromProducer(func() Actor { return nil }), "nil"); err == nil {
		t.Error("spawn with producer returning nil succeeded")
	}
	if pid := sys.Spawn(&Props{}); pid != nil {
		t.Errorf("Spawn with empty props = %v, want nil", pid)
	}
	if _, err := sys.SpawnNamed(nil, "nil-props"); err == nil {
		t.Error("spawn with nil props succeeded")
	}
	if n := sys.Registry().Count(); n != 0 {
		t.Errorf("failed spawns left %d processes registered", n)
	}
}

// syncDispatcher runs a mailbox on the scheduling goroutine.
type syncDispatcher struct{}

func (syncDispatcher) Schedule(fn func()) { fn() }
func (syncDispatcher) Throughput() int    { return 300 }

func TestStartedComesFirstWhateverArrivesDuringSpawn(t *testing.T) {
	sys := newSystem(t)
	first := make(chan any, 1)
	// The middleware's factory runs during the spawn: a message sent to the
	// name from there must not overtake Started (nor run the actor before
	// its middleware is in place).
	early := func(next ReceiveFunc) ReceiveFunc {
		sys.Send(NewPID(LocalAddress, "svc"), "early")
		return next
	}
	if _, err := sys.SpawnNamed(PropsFromFunc(func(c Context) {
		select {
		case first <- c.Message():
		default:
		}
	}, WithReceiverMiddleware(early), WithDispatcher(syncDispatcher{})), "svc"); err != nil {
		t.Fatal(err)
	}
	if m := <-first; m != startedMsg {
		t.Fatalf("first message %T %v, want *Started", m, m)
	}
}

func TestSpawnRacingShutdownIsStoppedByIt(t *testing.T) {
	sys, err := NewSystem(Config{Logger: quietLogger})
	if err != nil {
		t.Fatal(err)
	}
	shutdownErr := make(chan error, 1)
	// The producer runs after the spawn has checked for shutdown and before
	// it registers the actor: Shutdown begins right there.
	producer := func() Actor {
		go func() { shutdownErr <- sys.Shutdown(testkit.Context(t)) }()
		testkit.Eventually(t, "shutdown to begin", func() bool {
			_, err := sys.SpawnNamed(PropsFromFunc(func(Context) {}), "probe")
			return errors.Is(err, ErrSystemShutdown)
		})
		return ReceiveFunc(func(Context) {})
	}
	if _, err := sys.SpawnNamed(PropsFromProducer(producer), "late"); err != nil {
		t.Fatal(err)
	}
	if err := <-shutdownErr; err != nil {
		t.Fatalf("shutdown with an actor spawned as it began: %v", err)
	}
}

func TestActorCannotSpawnWhileStopping(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Stopped); ok {
			_, err := c.SpawnNamed(PropsFromFunc(func(Context) {}), "orphan")
			rec.Add(err)
		}
	}))
	stopAndWait(t, sys, pid)
	if err, _ := rec.WaitLen(t, 1)[0].(error); !errors.Is(err, ErrActorStopped) {
		t.Fatalf("spawn from Stopped: %v, want ErrActorStopped", err)
	}
	if n := sys.Registry().Count(); n != 0 {
		t.Fatalf("%d processes left after the actor stopped", n)
	}
}

func TestPerSenderFIFO(t *testing.T) {
	const senders, perSender = 8, 5000
	sys := newSystem(t)
	type seq struct{ sender, n int }
	var mu sync.Mutex
	next := make([]int, senders)
	var bad []string
	done := make(chan struct{})
	received := 0
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		m, ok := c.Message().(seq)
		if !ok {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if m.n != next[m.sender] {
			bad = append(bad, fmt.Sprintf("sender %d: got %d, want %d", m.sender, m.n, next[m.sender]))
		}
		next[m.sender] = m.n + 1
		if received++; received == senders*perSender {
			close(done)
		}
	}))
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range perSender {
				sys.Send(pid, seq{s, i})
			}
		})
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(testkit.Timeout):
		t.Fatal("not every message arrived")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("out of order: %v", bad[:min(5, len(bad))])
	}
}

func TestContextSendRequestRespondForward(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	// sink records what it gets and who sent it.
	sink := sys.Spawn(PropsFromFunc(func(c Context) {
		if s, ok := c.Message().(string); ok {
			sender := "<nil>"
			if c.Sender() != nil {
				sender = c.Sender().Id
			}
			rec.Add(s + " from " + sender)
		}
	}))
	eco := sys.Spawn(PropsFromFunc(echo))
	fwd := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(string); ok {
			c.Forward(sink)
		}
	}))
	sys.Spawn(PropsFromFunc(func(c Context) {
		switch m := c.Message().(type) {
		case *Started:
			c.Send(sink, "send")
			c.Request(eco, &ping{n: 7})
		case *pong:
			rec.Add(fmt.Sprintf("pong %d to requester", m.n))
			c.Send(fwd, "forwarded")
		}
	}))
	var got []string
	for _, g := range rec.WaitLen(t, 3) {
		got = append(got, g.(string))
	}
	slices.Sort(got)
	// Forward keeps the original sender: none.
	if want := []string{"forwarded from <nil>", "pong 7 to requester", "send from <nil>"}; !slices.Equal(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestForwardKeepsSenderAndHeader(t *testing.T) {
	sys := newSystem(t)
	eco := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*ping); ok {
			c.Respond(c.Header().Get("trace"))
		}
	}))
	fwd := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*ping); ok {
			c.Forward(eco)
		}
	}))
	reply, err := sys.Request(testkit.Context(t), fwd, &Envelope{Message: &ping{}, Header: Header{"trace": "t-1"}})
	if err != nil {
		t.Fatal(err)
	}
	if reply != "t-1" {
		t.Fatalf("reply = %v, want the header value forwarded with the sender", reply)
	}
}

// A user may give a process a name that looks generated, "$5" or a
// future's "$~5": the system's own names then skip the taken ones, and no
// spawn or request fails for it.
func TestGeneratedIDsSkipNamesTakenByUsers(t *testing.T) {
	sys := newSystem(t)
	props := PropsFromFunc(echo)
	taken := map[string]bool{}
	// Take the names the system would generate next.
	next := generatedNumber(t, sys.Registry().NextID())
	for n := range uint64(64) {
		for _, prefix := range []string{"$", FutureIDPrefix} {
			id := prefix + strconv.FormatUint(next+n, 36)
			if _, err := sys.SpawnNamed(props, id); err != nil {
				t.Fatal(err)
			}
			taken[id] = true
		}
	}
	pid := sys.Spawn(props)
	if pid == nil || taken[pid.Id] {
		t.Fatalf("Spawn = %v, want a PID with an id not taken", pid)
	}
	if named, err := sys.SpawnNamed(props, ""); err != nil || taken[named.Id] || named.Id == "" || named.Id == pid.Id {
		t.Fatalf(`SpawnNamed(props, "") = %v, %v; want a fresh generated id`, named, err)
	}
	for i := range 64 {
		f := sys.RequestFuture(pid, &ping{n: i}, -1)
		if id := f.PID().Id; taken[id] || !IsFutureID(id) {
			t.Fatalf("future id %q: taken already, or not a future's", id)
		}
		if reply, err := f.Result(); err != nil || reply.(*pong).n != i {
			t.Fatalf("reply = %v, %v", reply, err)
		}
		if id := sys.Registry().NextID(); IsFutureID(id) {
			t.Fatalf("NextID = %q, which looks like a future's", id)
		}
	}
}

// generatedNumber returns the number in a generated id ("$" or
// FutureIDPrefix, then base-36 digits).
func generatedNumber(t *testing.T, id string) uint64 {
	t.Helper()
	digits := strings.TrimPrefix(strings.TrimPrefix(id, FutureIDPrefix), "$")
	n, err := strconv.ParseUint(digits, 36, 64)
	if err != nil {
		t.Fatalf("%q is not a generated id: %v", id, err)
	}
	return n
}

// A system started after another (a process restarted at the same
// address) never generates an id the other made, for actors or futures:
// an old PID must not reach a new actor.
func TestASystemStartedLaterMakesNoIDAnEarlierOneMade(t *testing.T) {
	first := newSystem(t)
	var last uint64
	for range 100 {
		last = max(last, generatedNumber(t, first.Spawn(PropsFromFunc(echo)).Id))
		f := first.RequestFuture(first.Spawn(PropsFromFunc(echo)), &ping{}, -1)
		if _, err := f.Result(); err != nil {
			t.Fatal(err)
		}
		last = max(last, generatedNumber(t, f.PID().Id))
	}
	second := newSystem(t)
	actorID := second.Spawn(PropsFromFunc(echo)).Id
	futureID := second.RequestFuture(second.Spawn(PropsFromFunc(echo)), &ping{}, -1).PID().Id
	for _, id := range []string{actorID, futureID} {
		if n := generatedNumber(t, id); n <= last {
			t.Fatalf("the second system made %q (%d), not past the first system's last id (%d)", id, n, last)
		}
	}
}

func TestRequestToUnknownPIDFailsFast(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	// A deadline far beyond the test's own: if the request waited for it,
	// the test would time out instead of seeing ErrDeadLetter.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := sys.Request(ctx, NewPID(LocalAddress, "nobody"), &ping{})
	if !errors.Is(err, ErrDeadLetter) {
		t.Fatalf("err = %v, want ErrDeadLetter", err)
	}
	if !strings.Contains(err.Error(), "nobody") {
		t.Errorf("error %q does not name the target", err)
	}
	ev := dl.WaitLen(t, 1)[0].(*DeadLetterEvent)
	if ev.PID.Id != "nobody" || !errors.Is(ev.Reason, ErrDeadLetter) {
		t.Errorf("dead letter event = %+v", ev)
	}
	f := sys.RequestFuture(NewPID(LocalAddress, "nobody"), &ping{}, time.Hour)
	if _, err := f.Result(); !errors.Is(err, ErrDeadLetter) {
		t.Fatalf("future err = %v, want ErrDeadLetter", err)
	}
}

func TestRequestToStoppedActorFailsFast(t *testing.T) {
	sys := newSystem(t)
	pid := sys.Spawn(PropsFromFunc(echo))
	if _, err := sys.Request(testkit.Context(t), pid, &ping{}); err != nil {
		t.Fatal(err)
	}
	stopAndWait(t, sys, pid)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	// The same PID object, whose cached process is now dead.
	if _, err := sys.Request(ctx, pid, &ping{}); !errors.Is(err, ErrDeadLetter) {
		t.Fatalf("err = %v, want ErrDeadLetter", err)
	}
	// A fresh PID object for the same id.
	if _, err := sys.Request(ctx, NewPID(pid.Address, pid.Id), &ping{}); !errors.Is(err, ErrDeadLetter) {
		t.Fatalf("err = %v, want ErrDeadLetter", err)
	}
}

func TestRequestHonoursContextDeadline(t *testing.T) {
	sys := newSystem(t)
	silent := sys.Spawn(PropsFromFunc(func(Context) {}))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := sys.Request(ctx, silent, &ping{})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want context.DeadlineExceeded", err)
	}
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if _, err := sys.Request(cctx, silent, &ping{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	testkit.Eventually(t, "futures to be unregistered", func() bool { return sys.Registry().Count() == 1 })
}

func TestRequestFutureTimesOut(t *testing.T) {
	sys := newSystem(t)
	silent := sys.Spawn(PropsFromFunc(func(Context) {}))
	f := sys.RequestFuture(silent, &ping{}, 10*time.Millisecond)
	if _, err := f.Result(); !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	// A late reply to a completed future is a dead letter, not a panic.
	dl := deadLetters(t, sys)
	sys.Send(f.PID(), "late")
	if ev := dl.WaitLen(t, 1)[0].(*DeadLetterEvent); ev.Message != "late" {
		t.Fatalf("dead letter = %+v", ev)
	}
}

func TestFutureWithoutTimeoutEndsWithFail(t *testing.T) {
	sys := newSystem(t, Config{RequestTimeout: time.Millisecond})
	silent := sys.Spawn(PropsFromFunc(func(Context) {}))
	f := sys.RequestFuture(silent, &ping{}, -1)
	// Not even the system's RequestTimeout ends it: it has no timer.
	f.mu.Lock()
	timer := f.timer
	f.mu.Unlock()
	if timer != nil {
		t.Fatal("a future without timeout has a timer")
	}
	errGone := errors.New("gone")
	f.Fail(errGone)
	f.Fail(errors.New("second")) // later calls do nothing
	if _, err := f.Result(); !errors.Is(err, errGone) {
		t.Fatalf("err = %v, want the first Fail's", err)
	}
	testkit.Eventually(t, "the future to be unregistered", func() bool { return sys.Registry().Count() == 1 })
	// A reply that completed it first is kept.
	g := sys.RequestFuture(sys.Spawn(PropsFromFunc(echo)), &ping{n: 1}, -1)
	<-g.Done()
	g.Fail(errGone)
	if res, err := g.Result(); err != nil || res.(*pong).n != 1 {
		t.Fatalf("Fail after the reply: %v, %v", res, err)
	}
}

func TestSendToNilPIDIsADeadLetter(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	sys.Send(nil, "lost")
	ev := dl.WaitLen(t, 1)[0].(*DeadLetterEvent)
	if ev.Message != "lost" || !errors.Is(ev.Reason, ErrNilPID) {
		t.Fatalf("dead letter = %+v", ev)
	}
	if err := sys.StopAndWait(testkit.Context(t), nil); !errors.Is(err, ErrNilPID) {
		t.Fatalf("StopAndWait(nil) = %v", err)
	}
}

// A nil *Envelope is a message like any other value: it reaches the
// actor, or dead letters, without a panic on the way.
func TestANilEnvelopeIsDeliveredWithoutPanic(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); !ok {
			rec.Add(c.Message())
			if c.Sender() != nil || c.Header() != nil {
				rec.Add("sender or header")
			}
		}
	}))
	var nilEnvelope *Envelope
	sys.Send(pid, nilEnvelope)
	if got := rec.WaitLen(t, 1); got[0] != nilEnvelope {
		t.Fatalf("the actor got %#v, want the nil *Envelope", got)
	}
	dl := deadLetters(t, sys)
	sys.Send(NewPID(LocalAddress, "nobody"), nilEnvelope)
	if ev := dl.WaitLen(t, 1)[0].(*DeadLetterEvent); ev.Message != nilEnvelope || ev.Sender != nil {
		t.Fatalf("dead letter = %+v", ev)
	}
}

// A dead letter keeps the undelivered message's header, so that whoever
// re-delivers it (a cluster rerouting to a new activation) can too.
func TestADeadLetterCarriesTheHeader(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	sys.Send(NewPID(LocalAddress, "nobody"), &Envelope{Message: "lost", Header: Header{"trace": "t-1"}})
	if ev := dl.WaitLen(t, 1)[0].(*DeadLetterEvent); ev.Message != "lost" || ev.Header.Get("trace") != "t-1" {
		t.Fatalf("dead letter = %+v, want the message and its header", ev)
	}
}

func TestHeadersTravelWithTheMessage(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		if s, ok := c.Message().(string); ok {
			rec.Add(s + ":" + c.Header().Get("tenant"))
		}
	}))
	sys.Send(pid, &Envelope{Message: "a", Header: Header{"tenant": "acme"}})
	sys.Send(pid, "b")
	got := rec.WaitLen(t, 2)
	if got[0] != "a:acme" || got[1] != "b:" {
		t.Fatalf("got %v", got)
	}
	var h Header
	if h.Get("x") != "" {
		t.Fatal("nil header not empty")
	}
}

func TestPIDEqual(t *testing.T) {
	a, b := NewPID("h:1", "x"), NewPID("h:1", "x")
	if !a.Equal(b) || a.Equal(NewPID("h:2", "x")) || a.Equal(NewPID("h:1", "y")) || a.Equal(nil) {
		t.Fatal("Equal is wrong")
	}
	var n *PID
	if !n.Equal(nil) {
		t.Fatal("nil PIDs are not equal")
	}
}

func TestConfigValidation(t *testing.T) {
	for _, cfg := range []Config{
		{RequestTimeout: -time.Second},
		{DeadLetterLogInterval: -time.Second},
	} {
		if _, err := NewSystem(cfg); err == nil {
			t.Errorf("NewSystem(%+v) succeeded", cfg)
		}
	}
	sys := newSystem(t)
	got := sys.Config()
	def := DefaultConfig()
	if got.RequestTimeout != def.RequestTimeout || got.DeadLetterLogBurst != def.DeadLetterLogBurst ||
		got.DeadLetterLogInterval != def.DeadLetterLogInterval || got.SupervisorStrategy == nil {
		t.Fatalf("defaults not applied: %+v", got)
	}
}

func TestDeadLetterResponseCarriesTheReasonToActors(t *testing.T) {
	sys := newSystem(t)
	rec := newRecorder()
	sys.Spawn(PropsFromFunc(func(c Context) {
		switch m := c.Message().(type) {
		case *Started:
			c.Request(NewPID(LocalAddress, "nobody"), "hello?")
		case *DeadLetterResponse:
			rec.Add(m)
		}
	}))
	got := rec.WaitLen(t, 1)[0].(*DeadLetterResponse)
	if got.Target.Id != "nobody" || !strings.Contains(got.Reason, "no such process") {
		t.Fatalf("response = %+v", got)
	}
	var dle *DeadLetterError
	_, err := sys.Request(testkit.Context(t), NewPID(LocalAddress, "nobody"), "x")
	if !errors.As(err, &dle) || dle.Target.Id != "nobody" {
		t.Fatalf("err = %v, want a *DeadLetterError", err)
	}
}

func TestDeadLetterReasonsFromAnotherSystemMatchWithErrorsIs(t *testing.T) {
	sys := newSystem(t)
	target := NewPID("10.0.0.1:7000", "gone")
	for _, reason := range []error{ErrDeadLetter, ErrActorStopped, ErrMailboxFull} {
		// What a transport hands a future: the response as it came over
		// the wire, with the reason as text.
		f := sys.newFuture(time.Minute)
		f.SendUserMessage(nil, &DeadLetterResponse{Target: target, Reason: reason.Error()})
		_, err := f.Result()
		var dle *DeadLetterError
		if !errors.As(err, &dle) || !dle.Target.Equal(target) || !errors.Is(err, reason) || !errors.Is(err, ErrDeadLetter) {
			t.Fatalf("reason %q: err = %v, want a DeadLetterError matching %v", reason, err, reason)
		}
	}
	f := sys.newFuture(time.Minute)
	f.SendUserMessage(nil, &DeadLetterResponse{Target: target, Reason: "remote: something else"})
	if _, err := f.Result(); errors.Is(err, ErrActorStopped) || !strings.Contains(err.Error(), "remote: something else") {
		t.Fatalf("err = %v, want the reason's text and no runtime error", err)
	}
}

// A system message without the PID it must carry (it may come from the
// network) is a dead letter: it neither panics the sender nor fails the
// target.
func TestSystemMessagesWithoutTheirPIDsAreDeadLetters(t *testing.T) {
	sys := newSystem(t)
	var starts atomic.Int32
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		switch c.Message().(type) {
		case *Started:
			starts.Add(1)
		case string:
			c.Respond("pong")
		}
	}))
	dls := newRecorder()
	sub := Subscribe(sys.EventStream(), func(e *DeadLetterEvent) { dls.Add(e) })
	defer sub.Unsubscribe()
	for _, msg := range []any{&Watch{}, &Unwatch{}, &Terminated{}} {
		sys.SendSystemMessage(pid, msg)
	}
	for _, e := range dls.WaitLen(t, 3) {
		if e := e.(*DeadLetterEvent); !errors.Is(e.Reason, ErrNilPID) || !e.PID.Equal(pid) {
			t.Fatalf("dead letter %+v, want ErrNilPID for %v", e, pid)
		}
	}
	if res, err := sys.Request(testkit.Context(t), pid, "ping"); err != nil || res != "pong" || starts.Load() != 1 {
		t.Fatalf("after the bad messages: %v, %v, %d starts; want pong from the first incarnation", res, err, starts.Load())
	}
}
