package actor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// gated blocks in Receive on "block" until the gate opens, and records the
// other strings it gets.
func gated(entered, gate chan struct{}, rec *recorder) ReceiveFunc {
	return func(c Context) {
		if m, ok := c.Message().(string); ok {
			if m == "block" {
				close(entered)
				<-gate
				return
			}
			rec.Add(m)
		}
	}
}

func TestBoundedMailboxDropPolicy(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	entered, gate := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(gated(entered, gate, rec),
		WithMailbox(MailboxConfig{Capacity: 4, Policy: OverflowDrop})))
	sys.Send(pid, "block")
	<-entered
	for i := range 6 {
		sys.Send(pid, fmt.Sprint(i))
	}
	// A request beyond capacity fails at once rather than timing out.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := sys.Request(ctx, pid, "req"); !errors.Is(err, ErrDeadLetter) || !errors.Is(err, ErrMailboxFull) {
		t.Fatalf("request to a full mailbox: err = %v, want ErrDeadLetter and ErrMailboxFull", err)
	}
	close(gate)
	got := rec.WaitLen(t, 4)
	for i, g := range got[:4] {
		if g != fmt.Sprint(i) {
			t.Fatalf("kept %v, want the first four", got)
		}
	}
	drops := dl.WaitLen(t, 3)
	for _, d := range drops[:3] {
		if e := d.(*DeadLetterEvent); !errors.Is(e.Reason, ErrMailboxFull) {
			t.Fatalf("dead letter reason = %v, want ErrMailboxFull", e.Reason)
		}
	}
}

func TestBoundedMailboxBlockPolicy(t *testing.T) {
	sys := newSystem(t)
	entered, gate := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(gated(entered, gate, rec), WithMailbox(MailboxConfig{Capacity: 2})))
	sys.Send(pid, "block")
	<-entered
	const n = 50
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for i := range n {
			sys.Send(pid, fmt.Sprint(i))
		}
	}()
	mb := &pid.ref.Load().p.(*actorContext).mb
	testkit.Eventually(t, "the sender to block on the full mailbox", func() bool { return mb.waiters.Load() > 0 })
	close(gate)
	<-sent
	got := rec.WaitLen(t, n)
	for i, g := range got {
		if g != fmt.Sprint(i) {
			t.Fatalf("message %d = %v: lost or reordered", i, g)
		}
	}
}

func TestBlockedSendersAreReleasedWhenTheActorStops(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	entered, gate := make(chan struct{}), make(chan struct{})
	pid := sys.Spawn(PropsFromFunc(gated(entered, gate, newRecorder()), WithMailbox(MailboxConfig{Capacity: 1})))
	sys.Send(pid, "block")
	<-entered
	sys.Send(pid, "fills")
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() { sys.Send(pid, "blocked") })
	}
	sys.Stop(pid)
	close(gate)
	wg.Wait() // would hang if a blocked sender were never released
	testkit.Eventually(t, "every message to be dead-lettered", func() bool { return len(dl.Snapshot()) >= 4 })
}

func TestIdleActorsHoldNoGoroutines(t *testing.T) {
	sys := newSystem(t)
	var pids []*PID
	for range 1000 {
		pids = append(pids, sys.Spawn(PropsFromFunc(echo)))
	}
	for _, pid := range pids {
		if _, err := sys.Request(testkit.Context(t), pid, &ping{}); err != nil {
			t.Fatal(err)
		}
	}
	// goleak's check at the end of the package would catch leaks; here we
	// check that idle actors are not parked on goroutines while alive.
	testkit.Eventually(t, "mailbox runs to finish", func() bool {
		for _, pid := range pids {
			if pid.ref.Load().p.(*actorContext).mb.status.Load() != mailboxIdle {
				return false
			}
		}
		return true
	})
	// Only the dispatcher's few idle workers remain.
	if n := runtime.NumGoroutine(); n >= len(pids)/2 {
		t.Fatalf("%d goroutines for %d idle actors", n, len(pids))
	}
}

func TestManyProducersOneConsumerUnderLoad(t *testing.T) {
	sys := newSystem(t)
	const producers, each = 4, 20000
	var mu sync.Mutex
	count := 0
	done := make(chan struct{})
	pid := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(int); ok {
			mu.Lock()
			count++
			if count == producers*each {
				close(done)
			}
			mu.Unlock()
		}
	}))
	var wg sync.WaitGroup
	defer wg.Wait()
	for range producers {
		wg.Go(func() {
			for i := range each {
				sys.Send(pid, i)
			}
		})
	}
	select {
	case <-done:
	case <-time.After(testkit.Timeout):
		mu.Lock()
		defer mu.Unlock()
		t.Fatalf("received %d of %d", count, producers*each)
	}
}

// PoisonAndWait on an actor whose OverflowDrop mailbox is full: the pill is
// dropped, so the actor will not stop; the caller hears so at once, as a
// requester does, instead of waiting for its context.
func TestPoisonAndWaitFailsFastWhenThePillIsDropped(t *testing.T) {
	sys := newSystem(t)
	entered, gate := make(chan struct{}), make(chan struct{})
	rec := newRecorder()
	pid := sys.Spawn(PropsFromFunc(gated(entered, gate, rec),
		WithMailbox(MailboxConfig{Capacity: 2, Policy: OverflowDrop})))
	sys.Send(pid, "block")
	<-entered
	sys.Send(pid, "1")
	sys.Send(pid, "2")
	err := sys.PoisonAndWait(testkit.Context(t), pid)
	close(gate)
	if !errors.Is(err, ErrMailboxFull) || !errors.Is(err, ErrDeadLetter) {
		t.Fatalf("PoisonAndWait of a full mailbox: %v, want ErrDeadLetter and ErrMailboxFull", err)
	}
	rec.WaitLen(t, 2)
	stopAndWait(t, sys, pid) // the actor was not poisoned
}
