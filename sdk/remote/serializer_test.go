package remote

import (
	"bytes"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/testkit"
)

// upper is a serializer of our own: strings, upper-cased on the wire.
type upper struct{}

func (upper) ID() uint32 { return 100 }
func (upper) TypeName(msg any) (string, bool) {
	_, ok := msg.(string)
	return "upper.string", ok
}
func (upper) Marshal(dst []byte, msg any) ([]byte, error) {
	return append(dst, strings.ToUpper(msg.(string))...), nil
}
func (upper) Unmarshal(name string, data []byte) (any, error) { return string(data), nil }

func TestCustomSerializerAcrossTheWire(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	for _, n := range []*node{a, b} {
		if err := n.r.Serializers().Register(upper{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := a.r.Serializers().Register(upper{}); err == nil {
		t.Fatal("registering an ID twice succeeded")
	}
	if err := a.r.Serializers().Register(nil); err == nil {
		t.Fatal("registering nil succeeded")
	}
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond(s + "!")
		}
	}), "shout"); err != nil {
		t.Fatal(err)
	}
	reply, err := a.sys.Request(testkit.Context(t), actor.NewPID(b.r.Address(), "shout"), "hello")
	if err != nil || reply != "HELLO!" {
		t.Fatalf("reply = %v, %v", reply, err)
	}
}

// cachedUpper is upper with a TypeDecoder: the receiver must decode through
// the function DecoderFor returns, looking each type up once per stream.
type cachedUpper struct {
	upper
	lookups *atomic.Int32
}

func (cachedUpper) ID() uint32 { return 101 }
func (cachedUpper) Unmarshal(string, []byte) (any, error) {
	return nil, errors.New("Unmarshal called: the function from DecoderFor was not used")
}
func (c cachedUpper) DecoderFor(name string) (func([]byte) (any, error), error) {
	c.lookups.Add(1)
	switch name {
	case "upper.string":
		return func(data []byte) (any, error) { return string(data), nil }, nil
	case "upper.nil":
		return nil, nil
	}
	return nil, errors.New("no such type")
}

func TestTypeDecoderIsAskedOncePerType(t *testing.T) {
	a, b := startNode(t, fastConfig()), startNode(t, fastConfig())
	var aLookups, bLookups atomic.Int32
	if err := a.r.Serializers().Register(cachedUpper{lookups: &aLookups}); err != nil {
		t.Fatal(err)
	}
	if err := b.r.Serializers().Register(cachedUpper{lookups: &bLookups}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.sys.SpawnNamed(actor.PropsFromFunc(func(c actor.Context) {
		if s, ok := c.Message().(string); ok {
			c.Respond(s + "!")
		}
	}), "shout"); err != nil {
		t.Fatal(err)
	}
	for range 5 {
		reply, err := a.sys.Request(testkit.Context(t), actor.NewPID(b.r.Address(), "shout"), "hello")
		if err != nil || reply != "HELLO!" {
			t.Fatalf("reply = %v, %v", reply, err)
		}
	}
	if a, b := aLookups.Load(), bLookups.Load(); a != 1 || b != 1 {
		t.Fatalf("DecoderFor called %d times on the requester, %d on the responder; want once each", a, b)
	}

	// A lookup's failure, whatever its error, means an unknown type.
	e := newEntry(cachedUpper{lookups: &aLookups})
	for _, name := range []string{"upper.nil", "upper.other"} {
		if decode, err := e.decoderFor(name); decode != nil || !errors.Is(err, ErrUnknownType) {
			t.Errorf("decoderFor(%q) = %v, %v; want ErrUnknownType", name, decode != nil, err)
		}
	}
}

func TestSerializerLookupAndErrors(t *testing.T) {
	js := NewJSONSerializer()
	s := NewSerializers(js)
	if ser, name, err := s.forMessage(wrapperspb.String("x")); err != nil || ser.ID() != ProtoSerializerID || name != "google.protobuf.StringValue" {
		t.Fatalf("proto lookup = %v %q %v", ser, name, err)
	}
	type T struct{ A int }
	if _, _, err := s.forMessage(T{}); !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "remote.T") {
		t.Fatalf("unknown type: %v", err)
	}
	// Check unwraps an envelope and names the type it finds there.
	if err := s.Check(&actor.Envelope{Message: T{}, Header: actor.Header{"k": "v"}}); !errors.Is(err, ErrUnknownType) || !strings.Contains(err.Error(), "remote.T") {
		t.Fatalf("Check of an unknown type in an envelope: %v", err)
	}
	if err := js.Register("t", T{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(&actor.Envelope{Message: T{}}); err != nil {
		t.Fatalf("Check of a registered JSON type: %v", err)
	}
	if err := s.Check(wrapperspb.String("x")); err != nil {
		t.Fatalf("Check of a protobuf message: %v", err)
	}
	if err := js.Register("t", &T{}); err == nil {
		t.Fatal("a JSON name registered twice for two types")
	}
	if err := js.Register("", T{}); err == nil {
		t.Fatal("JSON registration without a name succeeded")
	}
	if _, err := js.Unmarshal("t", []byte("{not json")); err == nil {
		t.Fatal("bad JSON decoded")
	}
	if _, err := js.Unmarshal("nope", []byte("{}")); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown JSON name: %v", err)
	}
	// The receiver looks JSON types up once per stream, like protobuf ones.
	var _ TypeDecoder = js
	decode, err := js.DecoderFor("t")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := decode([]byte(`{"A":7}`)); err != nil || v != (T{A: 7}) {
		t.Fatalf("JSON decoder = %v, %v; want {7}", v, err)
	}
	if _, err := (ProtoSerializer{}).Unmarshal("no.such.Type", nil); !errors.Is(err, ErrUnknownType) {
		t.Fatalf("unknown proto name: %v", err)
	}
	if _, err := (ProtoSerializer{}).Unmarshal("google.protobuf.StringValue", []byte{0xff}); err == nil {
		t.Fatal("corrupt protobuf decoded")
	}
	if _, err := js.Marshal(nil, map[string]any{"f": func() {}}); err == nil {
		t.Fatal("unencodable JSON encoded")
	}
}

// The receiver's cached protobuf decoder allocates what decoding by hand
// does (the message and its fields), nothing more per message.
func TestProtoDecoderAllocatesOnlyTheMessage(t *testing.T) {
	rc := newReceiver(&Remote{serializers: NewSerializers(NewJSONSerializer())}, "peer")
	d := rc.decoderFor(typeKey{ProtoSerializerID, "google.protobuf.StringValue"})
	payload, err := proto.Marshal(wrapperspb.String("hello"))
	if err != nil {
		t.Fatal(err)
	}
	if m, err := d.decode(payload); err != nil || m.(*wrapperspb.StringValue).GetValue() != "hello" {
		t.Fatalf("decode = %v, %v", m, err)
	}
	mt := (&wrapperspb.StringValue{}).ProtoReflect().Type()
	byHand := testing.AllocsPerRun(100, func() {
		m := mt.New().Interface()
		if err := proto.Unmarshal(payload, m); err != nil {
			t.Fatal(err)
		}
	})
	cached := testing.AllocsPerRun(100, func() {
		if _, err := d.decode(payload); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("allocations per message: cached decoder %v, by hand %v", cached, byHand)
	if cached > byHand {
		t.Fatalf("the cached decoder allocates %v times per message, decoding by hand %v", cached, byHand)
	}
}

// A frame gRPC would not pool (1 KiB or less) is copied into a buffer gRPC
// gives back once written, not into one allocated for it alone; frames of
// every size arrive intact.
func TestFramesGoToGRPCInBuffersItGivesBack(t *testing.T) {
	for _, n := range []int{0, 1, 200, 1 << 10, smallFrameCap, 64 << 10} {
		f := &frame{data: make([]byte, n)}
		for i := range f.data {
			f.data[i] = byte(i)
		}
		for range 3 { // the second and third get buffers given back
			bs, err := frameCodec{}.Marshal(f)
			if err != nil {
				t.Fatal(err)
			}
			if len(bs) != 1 || !bytes.Equal(bs[0].ReadOnlyData(), f.data) {
				t.Fatalf("a frame of %d bytes went to gRPC as %d buffers of %d bytes, not as itself", n, len(bs), bs.Len())
			}
			if _, plain := bs[0].(mem.SliceBuffer); plain {
				t.Fatalf("a frame of %d bytes went to gRPC in a buffer it does not give back", n)
			}
			bs.Free()
		}
	}
}
