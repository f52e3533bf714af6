package remote

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/emptypb"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

func TestRequestAcrossTheWire(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	pid, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo")
	if err != nil {
		t.Fatal(err)
	}
	if pid.Address != b.r.Address() {
		t.Fatalf("PID address %q, want the advertised %q", pid.Address, b.r.Address())
	}
	far := actor.NewPID(b.r.Address(), "echo")
	for i := range 50 {
		reply, err := a.sys.Request(testkit.Context(t), far, str(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		if got := reply.(*wrapperspb.StringValue).GetValue(); got != fmt.Sprint(i) {
			t.Fatalf("reply %q, want %q", got, fmt.Sprint(i))
		}
	}
	// Headers travel with the message.
	reply, err := a.sys.Request(testkit.Context(t), far, &actor.Envelope{Message: str("x"), Header: actor.Header{"prefix": "hdr:"}})
	if err != nil || reply.(*wrapperspb.StringValue).GetValue() != "hdr:x" {
		t.Fatalf("reply with header = %v, %v", reply, err)
	}
}

// A system answers on the stream its caller opened: the caller's
// advertised address is never dialed, so a caller that cannot be dialed
// (here, nothing listens at its advertised address) still gets replies.
func TestRepliesTravelOnTheCallersStream(t *testing.T) {
	cfg := fastConfig()
	cfg.AdvertisedAddress = freePort(t)
	a, b := startNode(t, cfg), startNode(t, fastConfig())
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), "echo")
	for i := range 20 {
		reply, err := a.sys.Request(testkit.Context(t), far, str(fmt.Sprint(i)))
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if got := reply.(*wrapperspb.StringValue).GetValue(); got != fmt.Sprint(i) {
			t.Fatalf("reply %q, want %q", got, fmt.Sprint(i))
		}
	}
	// b's own messages to a, not replies, take the same way.
	got := &testkit.Recorder[string]{}
	sink := a.sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			got.Add(m.GetValue())
		}
	}))
	b.sys.Send(actor.NewPID(a.r.Address(), sink.Id), str("from b"))
	if v := got.WaitLen(t, 1)[0]; v != "from b" {
		t.Fatalf("a received %q", v)
	}
}

func TestEmptyMessagesKeepTheirType(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); !ok {
			c.Respond(c.Message()) // back as it came
		}
	}), "mirror"); err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), "mirror")
	// All encode to zero bytes; each arrives as its own type.
	for _, msg := range []any{&emptypb.Empty{}, wrapperspb.String(""), wrapperspb.Int64(0)} {
		reply, err := a.sys.Request(testkit.Context(t), far, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !proto.Equal(reply.(proto.Message), msg.(proto.Message)) || fmt.Sprintf("%T", reply) != fmt.Sprintf("%T", msg) {
			t.Fatalf("sent %T %v, got back %T %v", msg, msg, reply, reply)
		}
	}
}

func TestOrderPerSenderAcrossTheWire(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	const senders, each = 4, 3000
	got := &testkit.Recorder[string]{}
	next := make(map[string]int)
	var bad []string
	sink, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		m, ok := c.Message().(*wrapperspb.StringValue)
		if !ok {
			return
		}
		var s string
		var n int
		fmt.Sscanf(m.GetValue(), "%s %d", &s, &n)
		if n != next[s] {
			bad = append(bad, fmt.Sprintf("%s: got %d, want %d", s, n, next[s]))
		}
		next[s] = n + 1
		got.Add(s) // after bad: WaitLen below sees it
	}), "sink")
	if err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), sink.Id)
	var wg sync.WaitGroup
	for s := range senders {
		wg.Go(func() {
			for i := range each {
				a.sys.Send(far, str(fmt.Sprintf("s%d %d", s, i)))
			}
		})
	}
	wg.Wait()
	got.WaitLen(t, senders*each)
	if len(bad) > 0 {
		t.Fatalf("out of order: %v", bad[:min(len(bad), 5)])
	}
}

func TestRemoteSpawn(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	b.r.Register("echo", actor.PropsFromFunc(echo))
	pid, err := a.r.SpawnNamed(testkit.Context(t), b.r.Address(), "echo", "made-remotely")
	if err != nil {
		t.Fatal(err)
	}
	if pid.Address != b.r.Address() || pid.Id != "made-remotely" {
		t.Fatalf("spawned %v", pid)
	}
	reply, err := a.sys.Request(testkit.Context(t), pid, str("hi"))
	if err != nil || reply.(*wrapperspb.StringValue).GetValue() != "hi" {
		t.Fatalf("request to the spawned actor = %v, %v", reply, err)
	}
	if _, err := a.r.SpawnNamed(testkit.Context(t), b.r.Address(), "echo", "made-remotely"); !errors.Is(err, actor.ErrNameExists) {
		t.Fatalf("duplicate name: %v", err)
	}
	if _, err := a.r.Spawn(testkit.Context(t), b.r.Address(), "nope"); !errors.Is(err, ErrUnknownKind) {
		t.Fatalf("unknown kind: %v", err)
	}
	// Spawning "remotely" on ourselves works too.
	a.r.Register("echo", actor.PropsFromFunc(echo))
	local, err := a.r.Spawn(testkit.Context(t), a.r.Address(), "echo")
	if err != nil || local.Address != a.r.Address() {
		t.Fatalf("local spawn = %v, %v", local, err)
	}
}

func TestRequestToMissingRemoteActorFailsFast(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := a.sys.Request(ctx, actor.NewPID(b.r.Address(), "nobody"), str("anyone?"))
	if !errors.Is(err, actor.ErrDeadLetter) {
		t.Fatalf("err = %v, want actor.ErrDeadLetter", err)
	}
}

func TestUnknownTypesFailWithoutBreakingTheConnection(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), "echo")
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()

	// Not serializable at all: fails on the sender, naming the type.
	type notRegistered struct{ N int }
	_, err := a.sys.Request(ctx, far, notRegistered{N: 1})
	if !errors.Is(err, ErrUnknownType) || !errors.Is(err, actor.ErrDeadLetter) || !strings.Contains(err.Error(), "notRegistered") {
		t.Fatalf("unregistered type: err = %v", err)
	}

	// Known to the sender only: the receiver cannot decode it and says so.
	type jsonOnlyHere struct{ N int }
	if err := a.r.JSON().Register("test.JSONOnlyHere", jsonOnlyHere{}); err != nil {
		t.Fatal(err)
	}
	_, err = a.sys.Request(ctx, far, jsonOnlyHere{N: 2})
	if !errors.Is(err, actor.ErrDeadLetter) || !strings.Contains(err.Error(), "test.JSONOnlyHere") {
		t.Fatalf("type unknown to the receiver: err = %v", err)
	}

	// The connection is still fine.
	if _, err := a.sys.Request(testkit.Context(t), far, str("still here")); err != nil {
		t.Fatalf("after the failures: %v", err)
	}
}

func TestJSONMessagesRoundTrip(t *testing.T) {
	type greeting struct{ Name string }
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	for _, n := range []*node{a, b} {
		if err := n.r.JSON().Register("test.Greeting", &greeting{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if g, ok := c.Message().(*greeting); ok {
			c.Respond(&greeting{Name: "hello " + g.Name})
		}
	}), "greeter"); err != nil {
		t.Fatal(err)
	}
	reply, err := a.sys.Request(testkit.Context(t), actor.NewPID(b.r.Address(), "greeter"), &greeting{Name: "json"})
	if err != nil || reply.(*greeting).Name != "hello json" {
		t.Fatalf("reply = %#v, %v", reply, err)
	}
}

func TestOversizedMessagesFailOneByOne(t *testing.T) {
	bcfg := fastConfig()
	bcfg.MaxMessageSize = 1 << 10 // the receiver's limit, smaller than the sender's
	err := sendOversized(t, fastConfig(), bcfg, "echo", str(strings.Repeat("x", 4<<10)))
	if !strings.Contains(err.Error(), "google.protobuf.StringValue") {
		t.Fatalf("error %q does not name the type", err)
	}
}

func TestOversizedHeadersFailOneByOne(t *testing.T) {
	acfg := fastConfig()
	acfg.MaxMessageSize = 1 << 10 // frames may hold 1 MiB more
	// A small payload whose header is larger than a frame.
	sendOversized(t, acfg, fastConfig(), "echo", &actor.Envelope{Message: str("x"), Header: actor.Header{"big": strings.Repeat("h", 2<<20)}})
}

func TestOversizedTargetIDsFailOneByOne(t *testing.T) {
	acfg := fastConfig()
	acfg.MaxMessageSize = 1 << 10 // frames may hold 1 MiB more
	// A small message to an actor whose id is larger than a frame: the id
	// travels in the frame's table and counts like the payload.
	sendOversized(t, acfg, fastConfig(), strings.Repeat("i", 2<<20), str("x"))
}

// sendOversized connects a node of acfg to an echo actor on a node of
// bcfg, then requests msg of the actor id there, which must fail with
// ErrMessageTooLarge (the error is returned) and leave the connection up.
func sendOversized(t *testing.T, acfg, bcfg Config, id string, msg any) error {
	t.Helper()
	metrics := &countingMetrics{}
	acfg.Metrics = metrics
	a, b := startNode(t, acfg), startNode(t, bcfg)
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), "echo")
	// Establish the connection, so that the sender knows the peer's limit.
	if _, err := a.sys.Request(testkit.Context(t), far, str("small")); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := a.sys.Request(ctx, actor.NewPID(b.r.Address(), id), msg)
	if !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversized: err = %.300v", err) // the id may be megabytes long
	}
	if _, err := a.sys.Request(testkit.Context(t), far, str("small again")); err != nil {
		t.Fatalf("after an oversized message: %v", err)
	}
	if metrics.reconnects.Load() != 0 || a.logs.Contains("connection lost") {
		t.Fatal("the oversized message broke the connection")
	}
	return err
}

func TestWrongClusterIsRefusedOnBothSides(t *testing.T) {
	acfg, bcfg := fastConfig(), fastConfig()
	acfg.ClusterName, bcfg.ClusterName = "blue", "green"
	a, b := startNode(t, acfg), startNode(t, bcfg)
	terminated := &testkit.Recorder[*EndpointTerminated]{}
	sub := actor.Subscribe(a.sys.EventStream(), func(e *EndpointTerminated) { terminated.Add(e) })
	defer sub.Unsubscribe()
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	_, err := a.sys.Request(ctx, actor.NewPID(b.r.Address(), "anything"), str("hi"))
	if !errors.Is(err, ErrClusterMismatch) {
		t.Fatalf("dialer's error = %v, want ErrClusterMismatch", err)
	}
	if !strings.Contains(err.Error(), `"green"`) || !strings.Contains(err.Error(), `"blue"`) {
		t.Fatalf("error %q does not name both clusters", err)
	}
	if ev := terminated.WaitLen(t, 1)[0]; !errors.Is(ev.Reason, ErrClusterMismatch) {
		t.Fatalf("EndpointTerminated reason = %v", ev.Reason)
	}
	testkit.Eventually(t, "the listener to log the refusal", func() bool {
		return b.logs.Contains("refused a connection", `cluster "green"`, `cluster "blue"`)
	})
}

func TestRemoteWatchSeesStopAndTerminationReason(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	target, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(actor.Context) {}), "target")
	if err != nil {
		t.Fatal(err)
	}
	far := actor.NewPID(b.r.Address(), target.Id)
	got := watchRemote(a.sys, far, actor.NewPID(b.r.Address(), "nobody"))
	if err := b.sys.StopAndWait(testkit.Context(t), target); err != nil {
		t.Fatal(err)
	}
	term := got.WaitLen(t, 1)[0]
	if !term.Who.Equal(far) || term.Reason != actor.ReasonStopped {
		t.Fatalf("Terminated = %v", term)
	}
}

func TestGracefulShutdownFlushesAndTellsPeers(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	const n = 20000
	var count atomic.Int64 // read by the test when it gives up
	done := make(chan struct{})
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); ok {
			if count.Add(1) == n {
				close(done)
			}
		}
	}), "sink"); err != nil {
		t.Fatal(err)
	}
	// b watches an actor of a, to see a's goodbye.
	watchee := a.sys.Spawn(actor.PropsFromFunc(func(actor.Context) {}))
	got := &testkit.Recorder[*actor.Terminated]{}
	synced := make(chan struct{})
	b.sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch m := c.Message().(type) {
		case *actor.Started:
			c.Watch(watchee)
			c.Request(actor.NewPID(a.r.Address(), "nobody"), str("sync"))
		case *actor.DeadLetterResponse:
			close(synced)
		case *actor.Terminated:
			got.Add(m)
		}
	}))
	<-synced

	far := actor.NewPID(b.r.Address(), "sink")
	for i := range n {
		a.sys.Send(far, str(fmt.Sprint(i)))
	}
	if err := a.r.Shutdown(testkit.Context(t)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(testkit.Timeout):
		t.Fatalf("peer received %d of %d messages sent before shutdown", count.Load(), n)
	}
	term := got.WaitLen(t, 1)[0]
	if term.Reason != actor.ReasonAddressTerminated || !term.Who.Equal(watchee) {
		t.Fatalf("watcher got %v, want AddressTerminated for %v", term, watchee)
	}
	// After shutdown, sends to other systems are dead letters.
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	if _, err := a.sys.Request(ctx, far, str("late")); !errors.Is(err, ErrShutdown) {
		t.Fatalf("send after shutdown: %v", err)
	}
}

// A peer that answers a spawn with success but no PID (a faulty or
// hostile activator) fails the spawn with ErrProtocol: the caller never
// gets a nil PID without an error.
func TestRemoteSpawnAnsweredWithoutPIDFails(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	if err := b.sys.StopAndWait(testkit.Context(t), b.r.activator); err != nil {
		t.Fatal(err)
	}
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wire.SpawnRequest); ok {
			c.Respond(&wire.SpawnResponse{Status: wire.SpawnStatus_SPAWN_STATUS_OK})
		}
	}), activatorName); err != nil {
		t.Fatal(err)
	}
	pid, err := a.r.Spawn(testkit.Context(t), b.r.Address(), "echo")
	if !errors.Is(err, ErrProtocol) {
		t.Fatalf("Spawn = %v, %v; want ErrProtocol", pid, err)
	}
}

// A system that advertises another address than the one it binds (behind
// a proxy or a port mapping) puts the advertised one in its PIDs, and
// tells the port it took for a bind to any port.
func TestListenAddressIsTheBoundOne(t *testing.T) {
	n := startNode(t, Config{BindAddress: "127.0.0.1:0", AdvertisedAddress: "troupe.example:7000"})
	if got := n.r.Address(); got != "troupe.example:7000" {
		t.Fatalf("Address = %q, want the advertised troupe.example:7000", got)
	}
	if pid := n.sys.Spawn(actor.PropsFromFunc(echo)); pid.Address != "troupe.example:7000" {
		t.Fatalf("a PID of the system carries %q, want the advertised address", pid.Address)
	}
	bound := n.r.ListenAddress()
	if _, port, err := net.SplitHostPort(bound); err != nil || port == "0" {
		t.Fatalf("ListenAddress = %q (%v), want the port taken", bound, err)
	}
	c, err := net.Dial("tcp", bound)
	if err != nil {
		t.Fatalf("dial ListenAddress %s: %v", bound, err)
	}
	_ = c.Close()
}
