package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// rawClient speaks the protocol by hand, to misbehave on purpose.
type rawClient struct {
	t      *testing.T
	stream grpc.ClientStream
}

func dialRaw(t *testing.T, address string) *rawClient {
	t.Helper()
	cc, err := grpc.NewClient("passthrough:///"+address, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	t.Cleanup(func() {
		cancel()
		_ = cc.Close()
	})
	stream, err := cc.NewStream(ctx, &wire.RemotingService_ServiceDesc.Streams[0], wire.RemotingService_Connect_FullMethodName)
	if err != nil {
		t.Fatal(err)
	}
	return &rawClient{t: t, stream: stream}
}

func (c *rawClient) send(data []byte) {
	c.t.Helper()
	if err := c.stream.SendMsg(&frame{data: data}); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) sendRequest(req *wire.ConnectRequest) {
	c.t.Helper()
	if err := c.stream.SendMsg(req); err != nil {
		c.t.Fatal(err)
	}
}

func (c *rawClient) hello(version uint32) *wire.ConnectResponse {
	c.t.Helper()
	c.sendRequest(&wire.ConnectRequest{Frame: &wire.ConnectRequest_Hello{Hello: &wire.Hello{
		ProtocolVersion: version, ClusterName: "troupe", MemberId: "raw", Address: "127.0.0.1:1",
	}}})
	var resp wire.ConnectResponse
	if err := c.stream.RecvMsg(&resp); err != nil {
		c.t.Fatal(err)
	}
	return &resp
}

// batch encodes messages for target ids.
func batch(t *testing.T, msgs map[string]proto.Message) []byte {
	t.Helper()
	enc := wire.NewBatchEncoder()
	ser := newEntry(ProtoSerializer{})
	for target, m := range msgs {
		name, _ := ser.TypeName(m)
		if err := enc.Add(&wire.Envelope{TypeName: name, SerializerID: ProtoSerializerID, TargetID: target}, ser, m, 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	return append([]byte(nil), enc.Frame()...)
}

// sink records the strings it receives.
func sink(t *testing.T, n *node, name string) *testkit.Recorder[string] {
	got := &testkit.Recorder[string]{}
	if _, err := n.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*wrapperspb.StringValue); ok {
			got.Add(m.GetValue())
		}
	}), name); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestMalformedFramesAreDroppedAndTheStreamGoesOn(t *testing.T) {
	b := startNode(t, fastConfig())
	got := sink(t, b, "sink")
	c := dialRaw(t, b.r.Address())
	if resp := c.hello(protocolVersion); resp.GetWelcome() == nil {
		t.Fatalf("handshake answered %v", resp)
	}
	c.send([]byte("definitely not protobuf"))
	c.send([]byte{0x12, 0x7f, 0x01}) // a batch that claims more bytes than it has
	c.send(batch(t, map[string]proto.Message{"sink": str("after the garbage")}))
	if v := got.WaitLen(t, 1)[0]; v != "after the garbage" {
		t.Fatalf("got %q", v)
	}
	if !b.logs.Contains("dropped a malformed frame") {
		t.Fatal("malformed frames were not logged")
	}
}

func TestOversizedMessageFromAPeerIsRefusedAlone(t *testing.T) {
	cfg := fastConfig()
	cfg.MaxMessageSize = 1 << 10
	b := startNode(t, cfg)
	got := sink(t, b, "sink")
	dl := b.deadLetters(t)
	c := dialRaw(t, b.r.Address())
	c.hello(protocolVersion)
	// This peer ignores the limit the Welcome announced.
	c.send(batch(t, map[string]proto.Message{"sink": str(strings.Repeat("x", 2<<10))}))
	// A small payload with a large header is as large.
	enc := wire.NewBatchEncoder()
	env := wire.Envelope{TypeName: "google.protobuf.StringValue", SerializerID: ProtoSerializerID, TargetID: "sink",
		Header: map[string]string{"big": strings.Repeat("h", 2<<10)}}
	if err := enc.Add(&env, newEntry(ProtoSerializer{}), str("header"), 1<<30); err != nil {
		t.Fatal(err)
	}
	c.send(append([]byte(nil), enc.Frame()...))
	c.send(batch(t, map[string]proto.Message{"sink": str("small")}))
	if v := got.WaitLen(t, 1)[0]; v != "small" {
		t.Fatalf("got %q", v)
	}
	for _, e := range dl.WaitLen(t, 2) {
		u, ok := e.Message.(UndecodedMessage)
		if !errors.Is(e.Reason, ErrMessageTooLarge) || !ok || u.TypeName != "google.protobuf.StringValue" {
			t.Fatalf("dead letter = %+v", e)
		}
	}
}

func TestZeroTypeKeyDoesNotCrashTheReceiver(t *testing.T) {
	b := startNode(t, fastConfig())
	got := sink(t, b, "sink")
	dl := b.deadLetters(t)
	c := dialRaw(t, b.r.Address())
	c.hello(protocolVersion)
	// Serializer 0 and an empty type name: the zero value of a slot of the
	// frame's type table, which must still be resolved (and refused).
	enc := wire.NewBatchEncoder()
	if err := enc.Add(&wire.Envelope{TargetID: "sink"}, newEntry(ProtoSerializer{}), str("zero"), 1<<30); err != nil {
		t.Fatal(err)
	}
	c.send(append([]byte(nil), enc.Frame()...))
	c.send(batch(t, map[string]proto.Message{"sink": str("after")}))
	if v := got.WaitLen(t, 1)[0]; v != "after" {
		t.Fatalf("got %q", v)
	}
	if e := dl.WaitLen(t, 1)[0]; !errors.Is(e.Reason, ErrUnknownType) {
		t.Fatalf("dead letter = %+v", e)
	}
}

func TestHandshakeIsEnforced(t *testing.T) {
	cfg := fastConfig()
	cfg.HandshakeTimeout = 100 * time.Millisecond
	b := startNode(t, cfg)

	// Silence: the listener ends the stream after HandshakeTimeout.
	silent := dialRaw(t, b.r.Address())
	var resp wire.ConnectResponse
	err := silent.stream.RecvMsg(&resp)
	if status.Code(err) != codes.DeadlineExceeded {
		t.Fatalf("silent dialer: %v", err)
	}

	// A batch before the Hello.
	rude := dialRaw(t, b.r.Address())
	rude.send(batch(t, map[string]proto.Message{"x": str("too early")}))
	if err := rude.stream.RecvMsg(&resp); err != nil || resp.GetDisconnect().GetReason() != wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR {
		t.Fatalf("batch before hello: %v, %v", resp.GetFrame(), err)
	}

	// A version from the future.
	future := dialRaw(t, b.r.Address())
	d := future.hello(protocolVersion + 1).GetDisconnect()
	if d.GetReason() != wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR || !strings.Contains(d.GetMessage(), "version") {
		t.Fatalf("future version: %v", d)
	}
}

// A future's id is seen once: as a request's sender, then as its reply's
// target. The receiver caches no PID for it (a stream of requests would
// fill and empty its caches for nothing), yet delivers to it and from it
// as to any other process.
func TestReceiverCachesNoFutureIDs(t *testing.T) {
	b := startNode(t, fastConfig())
	var senders testkit.Recorder[*actor.PID]
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*wrapperspb.StringValue); ok {
			senders.Add(c.Sender())
		}
	}), "sink"); err != nil {
		t.Fatal(err)
	}
	// A request on its way back: its target is a future here.
	f := b.sys.RequestFuture(actor.NewPID("elsewhere:1", "nobody"), str("ask"), -1)
	defer f.Fail(errors.New("test over"))
	if !actor.IsFutureID(f.PID().Id) {
		t.Fatalf("future id %q lacks the prefix %q", f.PID().Id, actor.FutureIDPrefix)
	}
	requester := &actor.PID{Address: "peer:1", Id: actor.FutureIDPrefix + "42"}
	enc := wire.NewBatchEncoder()
	ser := newEntry(ProtoSerializer{})
	for _, env := range []wire.Envelope{
		{TargetID: "sink", Sender: wire.Sender{Address: requester.Address, ID: requester.Id}},
		{TargetID: f.PID().Id},
	} {
		env.TypeName, env.SerializerID = "google.protobuf.StringValue", ProtoSerializerID
		if err := enc.Add(&env, ser, str("x"), 1<<30); err != nil {
			t.Fatal(err)
		}
	}
	rc := newReceiver(b.r, "peer:1")
	if ctl, err := rc.dec.Decode(enc.Frame(), wire.NewRequest); err != nil || ctl != nil {
		t.Fatalf("decode: %v, %v", ctl, err)
	}
	rc.deliverBatch(len(enc.Frame()))
	if got, err := f.Result(); err != nil || got.(*wrapperspb.StringValue).GetValue() != "x" {
		t.Fatalf("the future got %v, %v", got, err)
	}
	if got := senders.WaitLen(t, 1)[0]; !got.Equal(requester) {
		t.Fatalf("sink's sender = %v, want %v", got, requester)
	}
	if _, ok := rc.targets["sink"]; !ok || len(rc.targets) != 1 {
		t.Fatalf("target cache = %v, want sink alone", rc.targets)
	}
	if len(rc.senders) != 0 {
		t.Fatalf("sender cache = %v, want empty", rc.senders)
	}
}
