package remote

import (
	"errors"
	"strings"
	"testing"

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
	if err := js.Register("t", T{}); err != nil {
		t.Fatal(err)
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
