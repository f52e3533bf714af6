package remote

import (
	"context"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

func TestPeerProcessKilledMidStream(t *testing.T) {
	peer := startPeerProcess(t, "127.0.0.1:0")
	a := startNode(t, fastConfig())
	far := actor.NewPID(peer.address, "echo")
	if _, err := a.sys.Request(testkit.Context(t), far, str("hello")); err != nil {
		t.Fatal(err)
	}
	terminated := &testkit.Recorder[*EndpointTerminated]{}
	sub := actor.Subscribe(a.sys.EventStream(), func(e *EndpointTerminated) { terminated.Add(e) })
	defer sub.Unsubscribe()
	got := watchRemote(a.sys, far, far)

	// A stream of messages is in flight when the process dies.
	stop := make(chan struct{})
	sent := make(chan struct{})
	go func() {
		defer close(sent)
		for {
			select {
			case <-stop:
				return
			default:
				a.sys.Send(far, str("stream"))
			}
		}
	}()
	peer.kill()
	term := got.WaitLen(t, 1)[0]
	close(stop)
	<-sent
	if term.Reason != actor.ReasonAddressTerminated || !term.Who.Equal(far) {
		t.Fatalf("watcher got %v, want AddressTerminated for %v", term, far)
	}
	if ev := terminated.WaitLen(t, 1)[0]; ev.Address != peer.address || !errors.Is(ev.Reason, ErrEndpointTerminated) {
		t.Fatalf("EndpointTerminated = %+v", ev)
	}
	// Requests to the dead peer fail (they do not hang).
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := a.sys.Request(ctx, far, str("anyone?")); !errors.Is(err, actor.ErrDeadLetter) {
		t.Fatalf("request to a dead peer: %v", err)
	}
}

// freePort returns a loopback address nobody listens on right now.
func freePort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()
	return addr
}

// countingMetrics counts calls.
type countingMetrics struct {
	sent, received, reconnects, terminated, depth atomic.Int64
	messagesSent, messagesReceived                atomic.Int64
}

func (m *countingMetrics) BatchSent(_ string, n, _ int) {
	m.sent.Add(1)
	m.messagesSent.Add(int64(n))
}

func (m *countingMetrics) BatchReceived(_ string, n, _ int) {
	m.received.Add(1)
	m.messagesReceived.Add(int64(n))
}
func (m *countingMetrics) QueueDepth(string, int)    { m.depth.Add(1) }
func (m *countingMetrics) Reconnected(string)        { m.reconnects.Add(1) }
func (m *countingMetrics) EndpointTerminated(string) { m.terminated.Add(1) }

func TestReconnectAfterThePeerReturns(t *testing.T) {
	addr := freePort(t)
	peer := startPeerProcess(t, addr)
	cfg := fastConfig()
	cfg.ReconnectTimeout = testkit.Timeout
	metrics := &countingMetrics{}
	cfg.Metrics = metrics
	a := startNode(t, cfg)
	far := actor.NewPID(addr, "echo")
	if _, err := a.sys.Request(testkit.Context(t), far, str("before")); err != nil {
		t.Fatal(err)
	}
	got := watchRemote(a.sys, far, far)
	peer.kill()
	startPeerProcess(t, addr)
	// The endpoint reconnects by itself; a request may be lost with the old
	// connection, so retry until one gets through.
	testkit.Eventually(t, "a request to the restarted peer", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := a.sys.Request(ctx, far, str("after"))
		return err == nil
	})
	if metrics.reconnects.Load() < 1 {
		t.Fatalf("no reconnect reported")
	}
	if metrics.terminated.Load() != 0 {
		t.Fatalf("the endpoint terminated although the peer came back within ReconnectTimeout")
	}
	// The echo the watcher watched died with the old process: the new
	// process (another member id) has an echo of its own.
	if term := got.WaitLen(t, 1)[0]; term.Reason != actor.ReasonAddressTerminated || !term.Who.Equal(far) {
		t.Fatalf("watcher got %v, want AddressTerminated for %v", term, far)
	}
	if !a.logs.Contains("peer restarted", "peer="+addr) {
		t.Fatal("the restart was not logged")
	}
	if metrics.sent.Load() == 0 || metrics.messagesSent.Load() < 2 || metrics.depth.Load() == 0 {
		t.Fatalf("metrics: %d batches, %d messages sent, %d depth reports", metrics.sent.Load(), metrics.messagesSent.Load(), metrics.depth.Load())
	}
}

func TestTerminateEndpointDropsQueuedMessagesAndNotifiesWatchers(t *testing.T) {
	cfg := fastConfig()
	cfg.ReconnectTimeout = time.Hour // only TerminateEndpoint ends it
	a := startNode(t, cfg)
	nowhere := freePort(t)
	dl := a.deadLetters(t)
	got := &testkit.Recorder[*actor.Terminated]{}
	watched := make(chan struct{})
	a.sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Watch(actor.NewPID(nowhere, "ghost"))
			close(watched)
		case *actor.Terminated:
			got.Add(m)
		}
	}))
	<-watched
	for range 10 {
		a.sys.Send(actor.NewPID(nowhere, "ghost"), str("queued"))
	}
	a.r.TerminateEndpoint(nowhere, errors.New("member left"))
	if term := got.WaitLen(t, 1)[0]; term.Reason != actor.ReasonAddressTerminated {
		t.Fatalf("Terminated = %v", term)
	}
	events := dl.WaitLen(t, 10)
	for _, e := range events {
		if e.Reason == nil || e.Reason.Error() != "member left" {
			t.Fatalf("dead letter reason = %v, want the termination reason", e.Reason)
		}
	}
}

func TestShutdownEndsTheReconnectBackoff(t *testing.T) {
	cfg := fastConfig()
	cfg.ReconnectBackoff, cfg.MaxReconnectBackoff, cfg.ReconnectTimeout = time.Hour, time.Hour, time.Hour
	a := startNode(t, cfg)
	nowhere := actor.NewPID(freePort(t), "ghost")
	dl := a.deadLetters(t)
	a.sys.Send(nowhere, str("queued"))
	// The log line comes after the last look at the stop flags: the writer
	// is then in (or about to enter) its hour of backoff.
	testkit.Eventually(t, "a failed connection attempt", func() bool {
		return a.logs.Contains("retrying the connection", "peer="+nowhere.Address)
	})
	if err := a.r.Shutdown(testkit.Context(t)); err != nil {
		t.Fatalf("shutdown during a backoff: %v", err)
	}
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, ErrShutdown) {
		t.Fatalf("the queued message went to dead letters with %v, want ErrShutdown", e.Reason)
	}
}

// A sender refused by a terminated endpoint's queue gets the termination
// reason, never a stand-in: the reason is set before done is closed, and
// the queue is closed after.
func TestTerminationReasonReachesEverySender(t *testing.T) {
	cfg := fastConfig()
	cfg.QueueFullTimeout = -1
	a := startNode(t, cfg)
	reason := errors.New("the reason")
	target := actor.NewPID(freePort(t), "ghost")
	wrong := &testkit.Recorder[error]{}
	sub := actor.Subscribe(a.sys.EventStream(), func(e *actor.DeadLetterEvent) {
		// Only the messages to target: a test of another package, run
		// at the same time, may still be dialing an address that was
		// its peer's and is now a's, and send there what a has not.
		if e.PID.Equal(target) && e.Reason != reason && !errors.Is(e.Reason, ErrQueueFull) {
			wrong.Add(e.Reason)
		}
	})
	defer sub.Unsubscribe()
	// The race is narrow: try it often, with senders offering as fast as
	// they can while the endpoint terminates. There is no writer: the test
	// plays it.
	for range 100 {
		ctx, cancel := context.WithCancel(context.Background())
		ep := &endpoint{r: a.r, peer: &peer{r: a.r, address: target.Address}, done: make(chan struct{}), ctx: ctx, cancel: cancel,
			wake: make(chan struct{}, 1), room: make(chan struct{}, 1)}
		ep.queue.Bound(1 << 10)
		var started, senders sync.WaitGroup
		for range 3 {
			started.Add(1)
			senders.Go(func() {
				ep.enqueue(outbound{target: target, item: "first"})
				started.Done()
				for {
					select {
					case <-ep.done:
						ep.enqueue(outbound{target: target, item: "last"})
						return
					default:
						ep.enqueue(outbound{target: target, item: "more"})
					}
				}
			})
		}
		started.Wait()
		ep.terminate(reason)
		senders.Wait()
	}
	if got := wrong.Snapshot(); len(got) > 0 {
		t.Fatalf("%d refused senders got another reason, such as %v", len(got), got[0])
	}
}

func TestCloseStopsAtOnceAndForGood(t *testing.T) {
	cfg := fastConfig()
	cfg.ReconnectTimeout = time.Hour
	a := startNode(t, cfg)
	nowhere := actor.NewPID(freePort(t), "ghost")
	dl := a.deadLetters(t)
	a.sys.Send(nowhere, str("queued"))
	a.r.Close()
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, ErrShutdown) {
		t.Fatalf("the queued message went to dead letters with %v, want ErrShutdown", e.Reason)
	}
	// Stopping again does nothing, and the transport does not start again.
	a.r.Close()
	if err := a.r.Shutdown(testkit.Context(t)); err != nil {
		t.Fatalf("Shutdown after Close: %v", err)
	}
	if err := a.r.Start(); err == nil {
		t.Fatal("Start after Close succeeded")
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := a.sys.Request(ctx, nowhere, str("late")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("request after Close: %v", err)
	}
}

func TestFullSendQueueDropsToDeadLetters(t *testing.T) {
	cfg := fastConfig()
	cfg.SendQueueSize = 4
	cfg.QueueFullTimeout = -1 // do not wait
	cfg.ReconnectTimeout = time.Hour
	a := startNode(t, cfg)
	nowhere := actor.NewPID(freePort(t), "ghost")
	dl := &testkit.Recorder[*actor.DeadLetterEvent]{}
	sub := actor.Subscribe(a.sys.EventStream(), func(e *actor.DeadLetterEvent) {
		if errors.Is(e.Reason, ErrQueueFull) {
			dl.Add(e)
		}
	})
	defer sub.Unsubscribe()
	// Nothing leaves the queue (there is no connection) and refusals are
	// dead-lettered on the sender's goroutine: once the sends return, 4
	// messages are queued and the other 16 refused.
	for range 20 {
		a.sys.Send(nowhere, str("x"))
	}
	if n := len(dl.Snapshot()); n != 16 {
		t.Fatalf("%d of 20 messages refused by a full queue of 4, want 16", n)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := a.sys.Request(ctx, nowhere, str("req")); !errors.Is(err, ErrQueueFull) {
		t.Fatalf("request into a full queue: %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer sys.Shutdown(context.Background())
	for _, cfg := range []Config{
		{BindAddress: "no-port"},
		{AdvertisedAddress: "also no port"},
		{MaxMessageSize: 1 << 20, MaxFrameSize: 1 << 20},
		{DialTimeout: -time.Second},
		{BatchSize: -1},
		{FlowControlWindow: 1 << 10},
		{FlowControlWindow: 2 << 30},
	} {
		if _, err := New(sys, cfg); err == nil {
			t.Errorf("New(%+v) succeeded", cfg)
		}
	}
	// Zero fields take DefaultConfig's values, which are valid as they are.
	r, err := New(sys, Config{})
	if err != nil {
		t.Fatal(err)
	}
	c, want := r.Config(), DefaultConfig()
	want.MemberID = c.MemberID
	if c.MemberID == "" || c != want {
		t.Fatalf("defaults: %+v, want %+v", c, want)
	}
	if _, err := New(sys, DefaultConfig()); err != nil {
		t.Fatalf("DefaultConfig is invalid: %v", err)
	}
	// MaxFrameSize's default follows MaxMessageSize.
	r, err = New(sys, Config{MaxMessageSize: 16 << 20})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Config().MaxFrameSize; got != 17<<20 {
		t.Fatalf("MaxFrameSize for a MaxMessageSize of 16 MiB = %d, want 17 MiB", got)
	}
}

// stalledReader blocks the reading goroutine of its system's streams, once
// stall is closed, until release is: a peer that stops reading.
type stalledReader struct {
	NopMetrics
	stall, release chan struct{}
}

func (m *stalledReader) BatchReceived(string, int, int) {
	select {
	case <-m.stall:
		<-m.release
	default:
	}
}

// writingToAStalledDialer starts a and b, makes b dial a (so that a's
// endpoint to b writes on b's stream), stops b reading, and has a send b
// far more than b's 64 KiB flow-control window: a's writer soon waits for
// b to read. b reads again when the test ends, before the nodes stop.
func writingToAStalledDialer(t *testing.T) (a, b *node) {
	t.Helper()
	m := &stalledReader{stall: make(chan struct{}), release: make(chan struct{})}
	a = startNode(t, Config{FlowControlWindow: 64 << 10})
	b = startNode(t, Config{FlowControlWindow: 64 << 10, Metrics: m})
	t.Cleanup(func() { close(m.release) }) // runs before the nodes' cleanups
	if _, err := a.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.sys.Request(testkit.Context(t), actor.NewPID(a.r.Address(), "echo"), str("hi")); err != nil {
		t.Fatal(err)
	}
	close(m.stall)
	big := str(string(make([]byte, 32<<10)))
	sink := actor.NewPID(b.r.Address(), "sink")
	for range 200 {
		a.sys.Send(sink, big)
	}
	return a, b
}

// Shutdown and Close end within their bounds even while a peer whose
// stream we write on (it dialed us) does not read: its flow-control window
// is full and our write waits.
func TestShutdownAndCloseDoNotWaitForAPeerThatDoesNotRead(t *testing.T) {
	for _, graceful := range []bool{true, false} {
		a, _ := writingToAStalledDialer(t)

		ended := make(chan error, 1)
		go func() {
			if graceful {
				ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
				defer cancel()
				ended <- a.r.Shutdown(ctx)
				return
			}
			a.r.Close()
			ended <- nil
		}()
		select {
		case err := <-ended:
			if graceful && !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("Shutdown = %v, want its deadline", err)
			}
		case <-testkit.Context(t).Done():
			t.Fatalf("graceful %v: still stopping while B does not read", graceful)
		}
	}
}

// TerminateEndpoint gives up on a peer at once even while the endpoint
// writes on the peer's own stream (it dialed us) and the peer does not
// read: the write waits for a window that never opens.
func TestTerminateEndpointDoesNotWaitForAPeerThatDoesNotRead(t *testing.T) {
	a, b := writingToAStalledDialer(t)
	terminated := &testkit.Recorder[*EndpointTerminated]{}
	sub := actor.Subscribe(a.sys.EventStream(), func(e *EndpointTerminated) { terminated.Add(e) })
	defer sub.Unsubscribe()
	reason := errors.New("member left")
	a.r.TerminateEndpoint(b.r.Address(), reason)
	if e := terminated.WaitLen(t, 1)[0]; e.Reason != reason {
		t.Fatalf("EndpointTerminated reason = %v, want %v", e.Reason, reason)
	}
}

// A process restarted at the same address makes ids of its own: a request
// for an actor of the old process, or an answer for one of its futures,
// fails as a dead letter there instead of reaching the actor or future of
// the new process that would otherwise have taken the same generated id.
func TestAnOldPIDDoesNotReachAnActorOfTheProcessRestartedAtItsAddress(t *testing.T) {
	addr := freePort(t)
	cfg := fastConfig()
	cfg.BindAddress = addr
	b := startNode(t, fastConfig())
	spawnEcho := func(n *node, name string) *actor.PID {
		return n.sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
			if _, ok := c.Message().(*wrapperspb.StringValue); ok {
				c.Respond(str(name))
			}
		}))
	}
	first := startNode(t, cfg)
	old := spawnEcho(first, "first")
	if reply, err := b.sys.Request(testkit.Context(t), old, str("hello")); err != nil || reply.(*wrapperspb.StringValue).GetValue() != "first" {
		t.Fatalf("request to the first process = %v, %v", reply, err)
	}
	first.stop(t)

	second := startNode(t, cfg)
	spawnEcho(second, "second")
	// The endpoint to addr reconnects by itself; a request may be lost
	// with the old connection, so retry until one is answered.
	var err error
	testkit.Eventually(t, "an answer from the restarted process", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		var reply any
		reply, err = b.sys.Request(ctx, old, str("hello"))
		if err == nil {
			t.Fatalf("the old PID %v reached an actor of the new process, which answered %q", old, reply.(*wrapperspb.StringValue).GetValue())
		}
		return answeredNoSuchProcess(err)
	})
}

// answeredNoSuchProcess reports whether err is a request's failure that
// the target's system answered: "no such process" there, not a dead letter
// here (an endpoint that ended under the request, for one).
func answeredNoSuchProcess(err error) bool {
	var dl *actor.DeadLetterError
	return errors.As(err, &dl) && (dl.Reason == nil || errors.Is(dl.Reason, actor.ErrDeadLetter))
}

// A connection that reaches another process at a peer's address than the
// last one did publishes PeerRestarted, naming both: what the old
// connection carried may be lost without a dead letter.
func TestAPeerRestartedAtItsAddressIsPublished(t *testing.T) {
	addr := freePort(t)
	cfg := fastConfig()
	cfg.BindAddress = addr
	b := startNode(t, fastConfig())
	var got testkit.Recorder[*PeerRestarted]
	sub := actor.Subscribe(b.sys.EventStream(), func(e *PeerRestarted) { got.Add(e) })
	defer sub.Unsubscribe()
	nobody := actor.NewPID(addr, "nobody")
	reach := func() {
		t.Helper()
		testkit.Eventually(t, "an answer from "+addr, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			_, err := b.sys.Request(ctx, nobody, str("hello"))
			return answeredNoSuchProcess(err)
		})
	}
	cfg.MemberID = "first"
	first := startNode(t, cfg)
	reach()
	first.stop(t)
	cfg.MemberID = "second"
	startNode(t, cfg)
	reach()
	if e := got.WaitLen(t, 1)[0]; e.Address != addr || e.Previous != "first" || e.MemberID != "second" {
		t.Fatalf("PeerRestarted = %+v, want %s restarted from first to second", e, addr)
	}
}
