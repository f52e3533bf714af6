package actor

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// fakeRemote stands in for a transport: it records what it is asked to
// deliver to PIDs of another address.
type fakeRemote struct {
	mu      sync.Mutex
	user    []any
	system  []any
	stopped []*PID
}

func (f *fakeRemote) SendUserMessage(_ *PID, m any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.user = append(f.user, m)
}

func (f *fakeRemote) SendSystemMessage(_ *PID, m any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.system = append(f.system, m)
}

func (f *fakeRemote) Stop(pid *PID) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.stopped = append(f.stopped, pid)
}

func TestAddressResolversRouteNonLocalPIDs(t *testing.T) {
	sys := newSystem(t)
	dl := deadLetters(t, sys)
	sys.Registry().SetAddress("127.0.0.1:7000")
	if sys.Address() != "127.0.0.1:7000" {
		t.Fatalf("Address = %q", sys.Address())
	}
	remote := &fakeRemote{}
	asked := 0
	sys.Registry().RegisterResolver(func(address string) (Process, bool) {
		asked++
		return remote, address == "127.0.0.1:7001"
	})
	far := NewPID("127.0.0.1:7001", "x")
	sys.Send(far, "hello")
	sys.Stop(far)
	sys.Send(NewPID("127.0.0.1:7001", "y"), "again")
	remote.mu.Lock()
	if len(remote.user) != 2 || remote.user[0] != "hello" || len(remote.system) != 1 {
		t.Fatalf("remote got user %v, system %v", remote.user, remote.system)
	}
	remote.mu.Unlock()
	if asked != 1 {
		t.Fatalf("resolver asked %d times for one address, want 1", asked)
	}

	// An address nobody resolves is a dead letter; a request to it fails fast.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := sys.Request(ctx, NewPID("10.0.0.1:1", "y"), "hi"); !errors.Is(err, ErrDeadLetter) {
		t.Fatalf("request to an unresolved address: %v", err)
	}
	dl.WaitLen(t, 1)

	// Local PIDs still resolve locally, under either address.
	pid := sys.Spawn(PropsFromFunc(echo))
	if pid.Address != "127.0.0.1:7000" {
		t.Fatalf("new PID address = %q", pid.Address)
	}
	for _, addr := range []string{"127.0.0.1:7000", LocalAddress} {
		if _, err := sys.Request(testkit.Context(t), NewPID(addr, pid.Id), &ping{}); err != nil {
			t.Fatalf("request via %s: %v", addr, err)
		}
	}
}

func TestCustomProcessesAndTransportHooks(t *testing.T) {
	sys := newSystem(t)
	p := &fakeRemote{}
	pid, err := sys.Registry().Add("proxy", p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sys.Registry().Add("proxy", p); !errors.Is(err, ErrNameExists) {
		t.Fatalf("duplicate Add: %v", err)
	}
	if got, ok := sys.Registry().Get("proxy"); !ok || got != p {
		t.Fatal("Get did not return the process")
	}
	sys.Send(pid, "m")
	sys.SendSystemMessage(pid, &Watch{Watcher: NewPID(LocalAddress, "w")})
	p.mu.Lock()
	if len(p.user) != 1 || len(p.system) != 1 {
		t.Fatalf("process got %v / %v", p.user, p.system)
	}
	p.mu.Unlock()
	sys.Registry().Remove(pid)
	if _, ok := sys.Registry().Get("proxy"); ok {
		t.Fatal("process still registered after Remove")
	}

	// A transport reports an undeliverable request: the requester fails fast.
	f := sys.RequestFuture(sys.Spawn(PropsFromFunc(func(c Context) {
		// Pretend this actor is a transport that could not deliver.
		if c.Message() == "deliver" {
			c.System().DeadLetter(NewPID("10.0.0.9:1", "gone"), &Envelope{Message: "payload", Sender: c.Sender()}, errors.New("connection refused"))
		}
	})), "deliver", time.Hour)
	if _, err := f.Result(); !errors.Is(err, ErrDeadLetter) || !strings.Contains(err.Error(), "gone") {
		t.Fatalf("requester: %v", err)
	}
}

func TestGoroutineDispatcher(t *testing.T) {
	sys := newSystem(t)
	d := NewGoroutineDispatcher(0)
	if d.Throughput() != DefaultThroughput {
		t.Fatalf("throughput = %d", d.Throughput())
	}
	pid := sys.Spawn(PropsFromFunc(echo, WithDispatcher(NewGoroutineDispatcher(2))))
	for i := range 10 {
		sys.Send(pid, "noise")
		if r, err := sys.Request(testkit.Context(t), pid, &ping{n: i}); err != nil || r.(*pong).n != i {
			t.Fatalf("request %d: %v %v", i, r, err)
		}
	}
}

func TestEscalationPastTheTopStopsTheActor(t *testing.T) {
	sys := newSystem(t, Config{SupervisorStrategy: OneForOneStrategy(1, 0, func(any) Directive { return DirectiveEscalate })})
	pid := sys.Spawn(counterProps(nil))
	sys.Send(pid, "boom")
	testkit.Eventually(t, "the actor to stop", func() bool { return sys.Registry().Count() == 0 })
}

func TestFutureAccessorsAndStop(t *testing.T) {
	sys := newSystem(t)
	eco := sys.Spawn(PropsFromFunc(echo))
	f := sys.RequestFuture(eco, &ping{n: 3}, 0)
	<-f.Done()
	if err := f.Wait(); err != nil {
		t.Fatal(err)
	}
	silent := sys.Spawn(PropsFromFunc(func(Context) {}))
	g := sys.RequestFuture(silent, "x", time.Hour)
	g.Stop(g.PID())
	if err := g.Wait(); !errors.Is(err, ErrActorStopped) {
		t.Fatalf("stopped future: %v", err)
	}
	// Callbacks registered after completion run at once.
	ran := false
	g.onComplete(func(any, error) { ran = true })
	if !ran {
		t.Fatal("callback on a completed future did not run")
	}
}

func TestContextAccessors(t *testing.T) {
	h := testkit.NewLogs()
	sys := newSystem(t, Config{Logger: slog.New(h)})
	rec := newRecorder()
	parent := sys.Spawn(PropsFromFunc(func(c Context) {
		if _, ok := c.Message().(*Started); ok {
			c.Spawn(PropsFromFunc(func(c Context) {
				if _, ok := c.Message().(*Started); ok {
					rec.Add(c.Parent())
					c.Logger().Info("child started")
				}
			}))
		}
	}))
	got := rec.WaitLen(t, 1)[0].(*PID)
	if !got.Equal(parent) {
		t.Fatalf("Parent() = %v, want %v", got, parent)
	}
	testkit.Eventually(t, "the child's log line", func() bool { return h.Count("child started pid="+parent.Id+"/") == 1 })
	if sys.Logger() == nil {
		t.Fatal("no system logger")
	}
}

// A future is a process: Stop fails it, and a watcher hears when it is gone,
// so StopAndWait of a future's PID returns.
func TestStopAndWaitOfAFuture(t *testing.T) {
	sys := newSystem(t)
	silent := sys.Spawn(PropsFromFunc(func(Context) {}))
	f := sys.RequestFuture(silent, "x", -1)
	if err := sys.StopAndWait(testkit.Context(t), f.PID()); err != nil {
		t.Fatalf("StopAndWait of a future: %v", err)
	}
	if err := f.Wait(); !errors.Is(err, ErrActorStopped) {
		t.Fatalf("stopped future: %v, want ErrActorStopped", err)
	}
}
