// Package wire holds Troupe's remoting protocol: the generated types of
// proto/troupe/remote/v1/remote.proto and a hand-written codec for the one
// frame on the hot path, a ConnectRequest carrying a MessageBatch.
//
// The codec writes exactly the protobuf encoding the schema describes (so
// any protobuf implementation can read it) but builds it in one reusable
// buffer, marshalling each payload straight into place, and reads it without
// allocating per message. Type names, target ids and senders go into their
// tables the first time an envelope uses them.
package wire

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers of the schema. ConnectRequest and ConnectResponse number
// their batch alike, so a batch frame is the same bytes both ways.
const (
	frameBatch = 2

	batchTypeNames = 1
	batchTargetIDs = 2
	batchSenders   = 3
	batchEnvelopes = 4

	pidAddress = 1
	pidID      = 2

	envType       = 1
	envSerializer = 2
	envPayload    = 3
	envTarget     = 4
	envSender     = 5
	envSystem     = 6
	envHeader     = 7

	headerKey   = 1
	headerValue = 2
)

// paddedLen is the width of a length written before its value is known: a
// varint padded to 5 bytes, which protobuf parsers accept.
const paddedLen = 5

// frameHead is the room kept at the start of the buffer for the frame's
// tag and length.
const frameHead = 1 + paddedLen

// Sender identifies the sender of a request.
type Sender struct {
	Address, ID string
}

// Envelope describes one message for the encoder.
type Envelope struct {
	TypeName     string
	SerializerID uint32
	TargetID     string
	Sender       Sender // zero for none
	System       bool
	Header       map[string]string
}

// PayloadWriter appends a message's serialized form to dst. Size returns
// the exact length it will append, or -1 if it cannot tell before writing.
type PayloadWriter interface {
	Size(msg any) (int, error)
	Marshal(dst []byte, msg any) ([]byte, error)
}

// BatchEncoder builds a ConnectRequest{batch} frame. Reset it, Add
// messages, then send Frame. It is not safe for concurrent use.
type BatchEncoder struct {
	buf     []byte
	types   map[string]uint32
	targets map[string]uint32
	senders map[Sender]uint32
	count   int
	// The previous envelope's table entries: a frame is mostly runs of
	// messages to one target, of one type, from one sender.
	lastType, lastTarget string
	lastTI, lastGI       uint32
	haveLast             bool
}

// NewBatchEncoder returns an empty encoder.
func NewBatchEncoder() *BatchEncoder {
	e := &BatchEncoder{
		types:   make(map[string]uint32),
		targets: make(map[string]uint32),
		senders: make(map[Sender]uint32),
	}
	e.Reset()
	return e
}

// Reset empties the encoder, keeping its buffer.
func (e *BatchEncoder) Reset() {
	e.buf = append(e.buf[:0], make([]byte, frameHead)...)
	clear(e.types)
	clear(e.targets)
	clear(e.senders)
	e.count = 0
	e.haveLast = false
}

// Count returns the number of messages added since Reset.
func (e *BatchEncoder) Count() int { return e.count }

// Size returns the frame's size so far, in bytes.
func (e *BatchEncoder) Size() int { return len(e.buf) }

// Add appends one message whose payload w writes from msg. If it fails (the
// serializer's error, or a payload over maxPayload bytes together with what
// travels around it: header, type name, target id and sender), the batch is
// left as it was before the call.
func (e *BatchEncoder) Add(env *Envelope, w PayloadWriter, msg any, maxPayload int) error {
	mark, count := len(e.buf), e.count
	types, targets, senders := len(e.types), len(e.targets), len(e.senders)
	if err := e.add(env, w, msg, maxPayload); err != nil {
		// Forget table entries this message added: they may point past mark.
		e.buf = e.buf[:mark]
		e.count = count
		e.haveLast = false
		if len(e.types) != types || len(e.targets) != targets || len(e.senders) != senders {
			e.forgetAfter(types, targets, senders)
		}
		return err
	}
	e.count++
	return nil
}

func (e *BatchEncoder) forgetAfter(types, targets, senders int) {
	for k, i := range e.types {
		if int(i) >= types {
			delete(e.types, k)
		}
	}
	for k, i := range e.targets {
		if int(i) >= targets {
			delete(e.targets, k)
		}
	}
	for k, i := range e.senders {
		if int(i) > senders {
			delete(e.senders, k)
		}
	}
}

func (e *BatchEncoder) add(env *Envelope, w PayloadWriter, msg any, maxPayload int) error {
	var ti, gi uint32
	if e.haveLast && env.TypeName == e.lastType {
		ti = e.lastTI
	} else {
		ti = e.index(e.types, env.TypeName, batchTypeNames)
	}
	if e.haveLast && env.TargetID == e.lastTarget {
		gi = e.lastGI
	} else {
		gi = e.index(e.targets, env.TargetID, batchTargetIDs)
	}
	e.lastType, e.lastTI, e.lastTarget, e.lastGI, e.haveLast = env.TypeName, ti, env.TargetID, gi, true
	var ok bool
	var si uint32
	if env.Sender != (Sender{}) {
		if si, ok = e.senders[env.Sender]; !ok {
			si = uint32(len(e.senders)) + 1
			e.senders[env.Sender] = si
			e.buf = protowire.AppendTag(e.buf, batchSenders, protowire.BytesType)
			e.buf = protowire.AppendVarint(e.buf, uint64(sizePID(env.Sender)))
			e.buf = appendPID(e.buf, env.Sender)
		}
	}

	size, err := w.Size(msg)
	if err != nil {
		return err
	}
	// What travels around the payload counts against the limit too: the
	// header, and the type name and PIDs the frame's tables may take in.
	// The frame's margin over the limit is made for envelope fields only.
	header := headerSize(env.Header)
	around := header + len(env.TypeName) + len(env.TargetID) + len(env.Sender.Address) + len(env.Sender.ID)
	if size >= 0 && size+around > maxPayload {
		return tooLarge(size, around, maxPayload)
	}
	e.buf = protowire.AppendTag(e.buf, batchEnvelopes, protowire.BytesType)
	var envLenAt int
	if size >= 0 {
		e.buf = protowire.AppendVarint(e.buf, uint64(envelopeSize(env, ti, gi, si, size, header)))
	} else {
		envLenAt = len(e.buf)
		e.buf = append(e.buf, make([]byte, paddedLen)...)
	}
	envStart := len(e.buf)
	e.buf = appendUint(e.buf, envType, uint64(ti))
	e.buf = appendUint(e.buf, envSerializer, uint64(env.SerializerID))
	e.buf = appendUint(e.buf, envTarget, uint64(gi))
	e.buf = appendUint(e.buf, envSender, uint64(si))
	if env.System {
		e.buf = protowire.AppendTag(e.buf, envSystem, protowire.VarintType)
		e.buf = protowire.AppendVarint(e.buf, 1)
	}
	if len(env.Header) > 0 {
		for k, v := range env.Header {
			e.buf = protowire.AppendTag(e.buf, envHeader, protowire.BytesType)
			e.buf = protowire.AppendVarint(e.buf, uint64(sizeHeaderEntry(k, v)))
			e.buf = appendHeaderEntry(e.buf, k, v)
		}
	}
	e.buf = protowire.AppendTag(e.buf, envPayload, protowire.BytesType)
	if size == 0 {
		e.buf = append(e.buf, 0) // an empty payload needs no marshalling
		return nil
	}
	if size > 0 {
		e.buf = protowire.AppendVarint(e.buf, uint64(size))
		start := len(e.buf)
		out, err := w.Marshal(e.buf, msg)
		if err = appended(out, start, err); err != nil {
			return err
		}
		if e.buf = out; len(e.buf)-start != size {
			return fmt.Errorf("wire: serializer wrote %d bytes, announced %d", len(e.buf)-start, size)
		}
		return nil
	}
	payLenAt := len(e.buf)
	e.buf = append(e.buf, make([]byte, paddedLen)...)
	start := len(e.buf)
	out, err := w.Marshal(e.buf, msg)
	if err = appended(out, start, err); err != nil {
		return err
	}
	e.buf = out
	n := len(e.buf) - start
	if n+around > maxPayload {
		return tooLarge(n, around, maxPayload)
	}
	putPadded(e.buf[payLenAt:], uint64(n))
	putPadded(e.buf[envLenAt:], uint64(len(e.buf)-envStart))
	return nil
}

// appended checks what a PayloadWriter's Marshal returned (out, err) for a
// dst of length start: the error, or out not extending dst (a writer that
// returned its own buffer, as `return json.Marshal(msg)` would).
func appended(out []byte, start int, err error) error {
	if err != nil {
		return err
	}
	if len(out) < start {
		return fmt.Errorf("wire: serializer returned %d bytes instead of appending to the %d it was given", len(out), start)
	}
	return nil
}

// index returns s's index in a string table, adding it if new.
func (e *BatchEncoder) index(table map[string]uint32, s string, field protowire.Number) uint32 {
	i, ok := table[s]
	if !ok {
		i = uint32(len(table))
		table[s] = i
		e.buf = protowire.AppendTag(e.buf, field, protowire.BytesType)
		e.buf = protowire.AppendString(e.buf, s)
	}
	return i
}

// Frame completes and returns the frame: a ConnectRequest or, the same
// bytes, a ConnectResponse carrying the batch. It stays valid until the
// next Reset or Add.
func (e *BatchEncoder) Frame() []byte {
	n := len(e.buf) - frameHead
	var scratch [frameHead]byte
	head := protowire.AppendTag(scratch[:0], frameBatch, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(n))
	start := frameHead - len(head)
	copy(e.buf[start:], head)
	return e.buf[start:]
}

func appendUint(b []byte, field protowire.Number, v uint64) []byte {
	if v == 0 {
		return b // proto3 default: omitted
	}
	b = protowire.AppendTag(b, field, protowire.VarintType)
	return protowire.AppendVarint(b, v)
}

func sizeUint(field protowire.Number, v uint64) int {
	if v == 0 {
		return 0
	}
	return protowire.SizeTag(field) + protowire.SizeVarint(v)
}

func sizeString(field protowire.Number, s string) int {
	if s == "" {
		return 0
	}
	return protowire.SizeTag(field) + protowire.SizeBytes(len(s))
}

func appendString(b []byte, field protowire.Number, s string) []byte {
	if s == "" {
		return b
	}
	b = protowire.AppendTag(b, field, protowire.BytesType)
	return protowire.AppendString(b, s)
}

func sizePID(s Sender) int { return sizeString(pidAddress, s.Address) + sizeString(pidID, s.ID) }

func appendPID(b []byte, s Sender) []byte {
	b = appendString(b, pidAddress, s.Address)
	return appendString(b, pidID, s.ID)
}

func sizeHeaderEntry(k, v string) int { return sizeString(headerKey, k) + sizeString(headerValue, v) }

func appendHeaderEntry(b []byte, k, v string) []byte {
	b = appendString(b, headerKey, k)
	return appendString(b, headerValue, v)
}

// envelopeSize returns the size of an envelope with a payload of payload
// bytes and header entries of header bytes (see headerSize).
func envelopeSize(env *Envelope, ti, gi, si uint32, payload, header int) int {
	n := sizeUint(envType, uint64(ti)) + sizeUint(envSerializer, uint64(env.SerializerID)) +
		sizeUint(envTarget, uint64(gi)) + sizeUint(envSender, uint64(si)) +
		protowire.SizeTag(envPayload) + protowire.SizeBytes(payload) + header
	if env.System {
		n += protowire.SizeTag(envSystem) + 1
	}
	return n
}

// headerSize returns the encoded size of a header's entries.
func headerSize(h map[string]string) int {
	if len(h) == 0 {
		return 0 // ranging over an empty map still sets up an iterator
	}
	n := 0
	for k, v := range h {
		n += protowire.SizeTag(envHeader) + protowire.SizeBytes(sizeHeaderEntry(k, v))
	}
	return n
}

// tooLarge is the error of a message over the limit; around is what
// travels with the payload.
func tooLarge(payload, around, limit int) error {
	if around == 0 {
		return fmt.Errorf("%w: %d bytes, limit %d", ErrMessageTooLarge, payload, limit)
	}
	return fmt.Errorf("%w: %d bytes and %d of header, type name and PIDs, limit %d", ErrMessageTooLarge, payload, around, limit)
}

// putPadded writes v as a varint of exactly paddedLen bytes.
func putPadded(b []byte, v uint64) {
	for i := range paddedLen - 1 {
		b[i] = byte(v&0x7f) | 0x80
		v >>= 7
	}
	b[paddedLen-1] = byte(v & 0x7f)
}

// Errors of the codec.
var (
	// ErrMessageTooLarge: a serialized message exceeds the size limit.
	ErrMessageTooLarge = errors.New("message too large")
	// ErrMalformed: a frame is not valid protobuf or breaks the schema.
	ErrMalformed = errors.New("malformed frame")
)
