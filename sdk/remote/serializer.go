package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"

	"github.com/troupehq/troupe/sdk/actor"
)

// Serializer turns messages into bytes and back. The sender picks the first
// registered serializer whose TypeName accepts a message; the receiver finds
// the serializer by ID and the type by name.
type Serializer interface {
	// ID identifies the serializer on the wire: 1 is protobuf, 2 JSON; use
	// 100 and above for your own. 0 is invalid.
	ID() uint32
	// TypeName returns the name under which the receiver finds msg's type,
	// or false if this serializer does not handle msg.
	TypeName(msg any) (string, bool)
	// Marshal appends msg's encoding to dst.
	Marshal(dst []byte, msg any) ([]byte, error)
	// Unmarshal decodes data into a new message of the named type. data is
	// only valid during the call.
	Unmarshal(typeName string, data []byte) (any, error)
}

// Sizer is implemented by serializers that know a message's encoded size
// before writing it; the transport then marshals it straight into the
// frame.
type Sizer interface {
	// Size returns the exact number of bytes Marshal will append for msg,
	// or -1 if it cannot tell before marshalling (the transport then
	// marshals into the frame and measures). An error fails the message as
	// a Marshal error would.
	Size(msg any) (int, error)
}

// TypeDecoder is implemented by serializers that can look a type up once
// and then decode many payloads of it. The receiver asks once per type and
// stream and keeps the function, sparing a lookup by name per message; a
// serializer without it has every payload go through Unmarshal.
type TypeDecoder interface {
	// DecoderFor returns a function that decodes payloads of the named type
	// into new messages, or an error if the type is unknown here (reported
	// as ErrUnknownType). data is only valid during a call.
	DecoderFor(typeName string) (func(data []byte) (any, error), error)
}

// Serializer IDs of the built-in serializers.
const (
	ProtoSerializerID uint32 = 1
	JSONSerializerID  uint32 = 2
)

// Serializers is an ordered registry of serializers, safe for concurrent
// use. Lookups take no lock.
type Serializers struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*serializerEntry]
}

// serializerEntry is a registered serializer; it is also what the wire
// encoder writes payloads with.
type serializerEntry struct {
	Serializer
	sizer Sizer       // nil if the serializer cannot size messages
	types TypeDecoder // nil if it decodes through Unmarshal only
}

// Size returns the serializer's size for msg, or -1 if it cannot tell.
func (e *serializerEntry) Size(msg any) (int, error) {
	if e.sizer == nil {
		return -1, nil
	}
	return e.sizer.Size(msg)
}

// decoderFor returns a function that decodes payloads of the named type:
// the serializer's own if it is a TypeDecoder, else one that calls
// Unmarshal.
func (e *serializerEntry) decoderFor(typeName string) (func([]byte) (any, error), error) {
	if e.types == nil {
		return func(data []byte) (any, error) { return e.Unmarshal(typeName, data) }, nil
	}
	decode, err := e.types.DecoderFor(typeName)
	switch {
	case err != nil && !errors.Is(err, ErrUnknownType):
		return nil, fmt.Errorf("%w: %s: %v", ErrUnknownType, typeName, err)
	case err == nil && decode == nil:
		return nil, fmt.Errorf("%w: %s: serializer %d has no decoder for it", ErrUnknownType, typeName, e.ID())
	}
	return decode, err
}

func newEntry(ser Serializer) *serializerEntry {
	sz, _ := ser.(Sizer)
	td, _ := ser.(TypeDecoder)
	return &serializerEntry{Serializer: ser, sizer: sz, types: td}
}

// NewSerializers returns a registry holding the protobuf serializer and the
// given JSON serializer, in that order.
func NewSerializers(json *JSONSerializer) *Serializers {
	s := &Serializers{}
	list := []*serializerEntry{newEntry(ProtoSerializer{}), newEntry(json)}
	s.list.Store(&list)
	return s
}

// Register adds ser ahead of the built-in serializers, so that it can take
// over types they would also accept. Its ID must be unused.
func (s *Serializers) Register(ser Serializer) error {
	if ser == nil || ser.ID() == 0 {
		return errors.New("remote: serializer needs a non-zero ID")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	old := *s.list.Load()
	for _, x := range old {
		if x.ID() == ser.ID() {
			return fmt.Errorf("remote: serializer ID %d already registered", ser.ID())
		}
	}
	list := append([]*serializerEntry{newEntry(ser)}, old...)
	s.list.Store(&list)
	return nil
}

// forMessage returns the serializer for msg and msg's type name, or an
// error naming the type that no serializer accepts.
func (s *Serializers) forMessage(msg any) (*serializerEntry, string, error) {
	for _, ser := range *s.list.Load() {
		if name, ok := ser.TypeName(msg); ok {
			return ser, name, nil
		}
	}
	return nil, "", fmt.Errorf("%w: %T", ErrUnknownType, msg)
}

// Check returns nil if a serializer accepts msg (the message of an
// *actor.Envelope), as sending it to a remote PID needs; otherwise an error
// matching ErrUnknownType that names the type. A send to a remote PID makes
// the same check, but its failure goes to dead letters, which a caller of
// a fire-and-forget send does not see.
func (s *Serializers) Check(msg any) error {
	msg, _, _ = actor.Unwrap(msg)
	_, _, err := s.forMessage(msg)
	return err
}

// byID returns the serializer with the given ID.
func (s *Serializers) byID(id uint32) (*serializerEntry, bool) {
	for _, ser := range *s.list.Load() {
		if ser.ID() == id {
			return ser, true
		}
	}
	return nil, false
}

// ProtoSerializer serializes protobuf messages (google.golang.org/protobuf)
// under their full names; the receiver finds the type in
// protoregistry.GlobalTypes, where generated code registers it.
type ProtoSerializer struct{}

// ID returns ProtoSerializerID.
func (ProtoSerializer) ID() uint32 { return ProtoSerializerID }

// TypeName returns the message's full protobuf name.
func (ProtoSerializer) TypeName(msg any) (string, bool) {
	m, ok := msg.(proto.Message)
	if !ok {
		return "", false
	}
	return string(m.ProtoReflect().Descriptor().FullName()), true
}

// Size returns the encoded size and caches it for Marshal.
func (ProtoSerializer) Size(msg any) (int, error) {
	return proto.Size(msg.(proto.Message)), nil
}

// cachedSize reuses the sizes Size just computed.
var cachedSize = proto.MarshalOptions{UseCachedSize: true}

// Marshal appends the protobuf encoding of msg.
func (ProtoSerializer) Marshal(dst []byte, msg any) ([]byte, error) {
	return cachedSize.MarshalAppend(dst, msg.(proto.Message))
}

// Unmarshal decodes a message of the named type.
func (ProtoSerializer) Unmarshal(typeName string, data []byte) (any, error) {
	mt, err := findProto(typeName)
	if err != nil {
		return nil, err
	}
	return decodeProto(mt, typeName, data)
}

// DecoderFor finds the named type in protoregistry.GlobalTypes once; the
// function it returns decodes payloads of that type.
func (ProtoSerializer) DecoderFor(typeName string) (func([]byte) (any, error), error) {
	mt, err := findProto(typeName)
	if err != nil {
		return nil, err
	}
	return func(data []byte) (any, error) { return decodeProto(mt, typeName, data) }, nil
}

func findProto(typeName string) (protoreflect.MessageType, error) {
	mt, err := protoregistry.GlobalTypes.FindMessageByName(protoreflect.FullName(typeName))
	if err != nil {
		return nil, fmt.Errorf("%w: protobuf %s", ErrUnknownType, typeName)
	}
	return mt, nil
}

func decodeProto(mt protoreflect.MessageType, typeName string, data []byte) (any, error) {
	m := mt.New().Interface()
	if len(data) == 0 {
		return m, nil // a message with every field at its default
	}
	if err := proto.Unmarshal(data, m); err != nil {
		return nil, fmt.Errorf("remote: decode %s: %w", typeName, err)
	}
	return m, nil
}

// JSONSerializer serializes registered Go types with encoding/json. Both
// sides register each type under the same name.
type JSONSerializer struct {
	mu     sync.RWMutex
	byName map[string]reflect.Type
	byType map[reflect.Type]string
}

// NewJSONSerializer returns a JSON serializer with no types.
func NewJSONSerializer() *JSONSerializer {
	return &JSONSerializer{byName: map[string]reflect.Type{}, byType: map[reflect.Type]string{}}
}

// Register makes messages of sample's type (a struct or a pointer to one)
// travel as JSON under name. The receiver gets values of the same type:
// pointers if sample is a pointer.
func (j *JSONSerializer) Register(name string, sample any) error {
	t := reflect.TypeOf(sample)
	if t == nil || name == "" {
		return errors.New("remote: JSON registration needs a name and a non-nil sample")
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	if other, ok := j.byName[name]; ok && other != t {
		return fmt.Errorf("remote: JSON type name %q already registered for %v", name, other)
	}
	j.byName[name] = t
	j.byType[t] = name
	return nil
}

// ID returns JSONSerializerID.
func (j *JSONSerializer) ID() uint32 { return JSONSerializerID }

// TypeName returns the registered name of msg's type.
func (j *JSONSerializer) TypeName(msg any) (string, bool) {
	j.mu.RLock()
	defer j.mu.RUnlock()
	name, ok := j.byType[reflect.TypeOf(msg)]
	return name, ok
}

// Marshal appends msg as JSON.
func (j *JSONSerializer) Marshal(dst []byte, msg any) ([]byte, error) {
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("remote: encode %T as JSON: %w", msg, err)
	}
	return append(dst, b...), nil
}

// Unmarshal decodes a value of the type registered under typeName.
func (j *JSONSerializer) Unmarshal(typeName string, data []byte) (any, error) {
	decode, err := j.DecoderFor(typeName)
	if err != nil {
		return nil, err
	}
	return decode(data)
}

// DecoderFor returns a function that decodes values of the type registered
// under typeName, looked up once. A name keeps its type once registered, so
// the function stays valid.
func (j *JSONSerializer) DecoderFor(typeName string) (func([]byte) (any, error), error) {
	j.mu.RLock()
	t, ok := j.byName[typeName]
	j.mu.RUnlock()
	if !ok {
		return nil, fmt.Errorf("%w: JSON %s", ErrUnknownType, typeName)
	}
	ptr := t.Kind() == reflect.Pointer
	base := t
	if ptr {
		base = t.Elem()
	}
	return func(data []byte) (any, error) {
		v := reflect.New(base)
		if err := json.Unmarshal(data, v.Interface()); err != nil {
			return nil, fmt.Errorf("remote: decode %s: %w", typeName, err)
		}
		if ptr {
			return v.Interface(), nil
		}
		return v.Elem().Interface(), nil
	}, nil
}
