package wire

import (
	"bytes"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/troupehq/troupe/sdk/actor"
)

// Batch is a decoded MessageBatch. Its slices are reused by the decoder's
// next call, and payloads alias the frame.
type Batch struct {
	TypeNames []string
	TargetIDs []string
	Senders   []Sender
	Envelopes []Message
}

// Message is one decoded envelope. Indexes have been checked against the
// tables: an envelope whose indexes do not fit has Err set instead.
type Message struct {
	TypeIndex    uint32
	SerializerID uint32
	TargetIndex  uint32
	// SenderIndex is 0 for no sender, else 1 + index into Senders.
	SenderIndex uint32
	System      bool
	Payload     []byte
	// Header holds key, value, key, value...; nil without a header.
	Header []string
	// Err says why this envelope cannot be delivered.
	Err error
}

// Decoder decodes ConnectRequest frames. It reuses its memory across calls
// and is not safe for concurrent use.
type Decoder struct {
	Batch  Batch
	intern map[string]string
}

// maxInterned bounds the decoder's table of interned type names and ids.
const maxInterned = 4096

// NewDecoder returns a decoder.
func NewDecoder() *Decoder { return &Decoder{intern: make(map[string]string)} }

// NewRequest returns an empty ConnectRequest, for Decode on the listener's
// side.
func NewRequest() proto.Message { return &ConnectRequest{} }

// NewResponse returns an empty ConnectResponse, for Decode on the dialer's
// side.
func NewResponse() proto.Message { return &ConnectResponse{} }

// Decode decodes a frame of either direction: it fills d.Batch from a
// batch frame and returns nil, or decodes a control frame into a message
// from control (NewRequest on the listener's side, NewResponse on the
// dialer's) and returns it. A frame that is not valid protobuf, or not a
// frame of that direction, yields an error wrapping ErrMalformed.
func (d *Decoder) Decode(frame []byte, control func() proto.Message) (proto.Message, error) {
	var batch []byte
	for b := frame; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return nil, malformed("frame tag", protowire.ParseError(n))
		}
		b = b[n:]
		if num == frameBatch && typ == protowire.BytesType {
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return nil, malformed("batch", protowire.ParseError(n))
			}
			if batch != nil {
				return nil, malformed("batch", fmt.Errorf("more than one batch in a frame"))
			}
			batch, b = v, b[n:]
			continue
		}
		if num == frameBatch {
			return nil, malformed("batch", fmt.Errorf("wire type %v", typ))
		}
		// A control frame: small and rare, decoded by the generated code.
		if batch != nil {
			return nil, malformed("frame", fmt.Errorf("batch mixed with field %d", num))
		}
		m := control()
		if err := proto.Unmarshal(frame, m); err != nil {
			return nil, malformed("control frame", err)
		}
		return m, nil
	}
	if batch == nil {
		return nil, malformed("frame", fmt.Errorf("empty frame"))
	}
	return nil, d.decodeBatch(batch)
}

func malformed(what string, err error) error {
	return fmt.Errorf("%w: %s: %v", ErrMalformed, what, err)
}

// futureIDPrefix is actor.FutureIDPrefix as bytes.
var futureIDPrefix = []byte(actor.FutureIDPrefix)

// id returns a process id: interned like str, unless it is a future's,
// which is seen once (a request's sender, then its reply's target).
func (d *Decoder) id(b []byte) string {
	if bytes.HasPrefix(b, futureIDPrefix) {
		return string(b)
	}
	return d.str(b)
}

// str returns b as a string, from the decoder's table when it is there.
func (d *Decoder) str(b []byte) string {
	if s, ok := d.intern[string(b)]; ok {
		return s
	}
	s := string(b)
	if len(d.intern) >= maxInterned {
		clear(d.intern)
	}
	d.intern[s] = s
	return s
}

// fields calls fn for each field of the message encoded in b, with the
// value of a varint field or the bytes of a length-delimited one. Fields of
// other wire types are skipped, as protobuf skips unknown fields.
func fields(b []byte, what string, fn func(num protowire.Number, varint uint64, bytes []byte, isBytes bool) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed(what, protowire.ParseError(n))
		}
		b = b[n:]
		var err error
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return malformed(what, protowire.ParseError(n))
			}
			b, err = b[n:], fn(num, v, nil, false)
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return malformed(what, protowire.ParseError(n))
			}
			b, err = b[n:], fn(num, 0, v, true)
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return malformed(what, protowire.ParseError(n))
			}
			b = b[n:]
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (d *Decoder) decodeBatch(b []byte) error {
	bt := &d.Batch
	bt.TypeNames = bt.TypeNames[:0]
	bt.TargetIDs = bt.TargetIDs[:0]
	bt.Senders = bt.Senders[:0]
	clear(bt.Envelopes) // drop payload references of the previous frame
	bt.Envelopes = bt.Envelopes[:0]
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return malformed("batch", protowire.ParseError(n))
		}
		b = b[n:]
		if typ != protowire.BytesType {
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return malformed("batch", protowire.ParseError(n))
			}
			b = b[n:]
			continue
		}
		v, n := protowire.ConsumeBytes(b)
		if n < 0 {
			return malformed("batch", protowire.ParseError(n))
		}
		b = b[n:]
		switch num {
		case batchEnvelopes:
			m, err := decodeEnvelope(v)
			if err != nil {
				return err
			}
			bt.Envelopes = append(bt.Envelopes, m)
		case batchTypeNames:
			bt.TypeNames = append(bt.TypeNames, d.str(v))
		case batchTargetIDs:
			bt.TargetIDs = append(bt.TargetIDs, d.id(v))
		case batchSenders:
			var s Sender
			if err := fields(v, "sender", func(num protowire.Number, _ uint64, v []byte, isBytes bool) error {
				switch {
				case isBytes && num == pidAddress:
					s.Address = d.str(v)
				case isBytes && num == pidID:
					s.ID = d.id(v)
				}
				return nil
			}); err != nil {
				return err
			}
			bt.Senders = append(bt.Senders, s)
		}
	}
	// Tables may follow the envelopes that use them: check indexes last.
	for i := range bt.Envelopes {
		m := &bt.Envelopes[i]
		if int(m.SenderIndex) > len(bt.Senders) {
			m.SenderIndex = 0 // an unknown sender cannot be told anything
			m.Err = fmt.Errorf("%w: sender index out of range", ErrMalformed)
		}
		switch {
		case int(m.TypeIndex) >= len(bt.TypeNames):
			m.Err = fmt.Errorf("%w: type index %d of %d", ErrMalformed, m.TypeIndex, len(bt.TypeNames))
		case int(m.TargetIndex) >= len(bt.TargetIDs):
			m.Err = fmt.Errorf("%w: target index %d of %d", ErrMalformed, m.TargetIndex, len(bt.TargetIDs))
		}
	}
	return nil
}

// decodeEnvelope parses one envelope. Like decodeBatch's loop it is on the
// per-message hot path, so it walks the fields by hand rather than through
// fields.
func decodeEnvelope(b []byte) (Message, error) {
	var m Message
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return m, malformed("envelope", protowire.ParseError(n))
		}
		b = b[n:]
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return m, malformed("envelope", protowire.ParseError(n))
			}
			b = b[n:]
			if num == envSystem {
				m.System = v != 0
				continue
			}
			var field *uint32
			switch num {
			case envType:
				field = &m.TypeIndex
			case envSerializer:
				field = &m.SerializerID
			case envTarget:
				field = &m.TargetIndex
			case envSender:
				field = &m.SenderIndex
			default:
				continue // an unknown field
			}
			if v > 1<<32-1 {
				return m, malformed("envelope", fmt.Errorf("field %d out of range", num))
			}
			*field = uint32(v)
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if n < 0 {
				return m, malformed("envelope", protowire.ParseError(n))
			}
			b = b[n:]
			switch num {
			case envPayload:
				m.Payload = v
			case envHeader:
				var key, value string
				if err := fields(v, "header", func(num protowire.Number, _ uint64, v []byte, isBytes bool) error {
					switch {
					case isBytes && num == headerKey:
						key = string(v)
					case isBytes && num == headerValue:
						value = string(v)
					}
					return nil
				}); err != nil {
					return m, err
				}
				m.Header = append(m.Header, key, value)
			}
		default:
			if n = protowire.ConsumeFieldValue(num, typ, b); n < 0 {
				return m, malformed("envelope", protowire.ParseError(n))
			}
			b = b[n:]
		}
	}
	return m, nil
}
