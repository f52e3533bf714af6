package wire

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/troupehq/troupe/sdk/actor"
)

// rawWriter writes a []byte payload as is; sized says whether it announces
// the size first (exact lengths) or not (padded lengths).
type rawWriter struct{ sized bool }

func (w rawWriter) Size(msg any) (int, error) {
	if !w.sized {
		return -1, nil
	}
	return len(msg.([]byte)), nil
}

func (w rawWriter) Marshal(dst []byte, msg any) ([]byte, error) {
	return append(dst, msg.([]byte)...), nil
}

// freshWriter returns a buffer of its own instead of appending to dst, the
// mistake of a serializer that does `return json.Marshal(msg)`.
type freshWriter struct{ rawWriter }

func (freshWriter) Marshal(_ []byte, msg any) ([]byte, error) {
	return append([]byte(nil), msg.([]byte)...), nil
}

type failWriter struct{}

func (failWriter) Size(any) (int, error)               { return -1, nil }
func (failWriter) Marshal([]byte, any) ([]byte, error) { return nil, errors.New("cannot marshal") }

type sample struct {
	env     Envelope
	payload []byte
}

func randomBatch(rng *rand.Rand) []sample {
	n := 1 + rng.IntN(40)
	out := make([]sample, n)
	for i := range out {
		s := &out[i]
		s.env.TypeName = fmt.Sprintf("pkg.Type%d", rng.IntN(4))
		s.env.SerializerID = uint32(1 + rng.IntN(2))
		s.env.TargetID = fmt.Sprintf("$%d", rng.IntN(6))
		if rng.IntN(2) == 0 {
			s.env.Sender = Sender{Address: fmt.Sprintf("127.0.0.1:%d", 7000+rng.IntN(2)), ID: fmt.Sprintf("$s%d", rng.IntN(3))}
		}
		s.env.System = rng.IntN(5) == 0
		if rng.IntN(3) == 0 {
			s.env.Header = map[string]string{"trace": fmt.Sprint(rng.Int()), "k": ""}
		}
		s.payload = make([]byte, rng.IntN(300))
		for j := range s.payload {
			s.payload[j] = byte(rng.Int())
		}
	}
	return out
}

// check compares a decoded batch with what was encoded.
func check(t *testing.T, want []sample, types, targets []string, senders []Sender, got []Message) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d envelopes, want %d", len(got), len(want))
	}
	for i, m := range got {
		w := want[i]
		if m.Err != nil {
			t.Fatalf("envelope %d: %v", i, m.Err)
		}
		var sender Sender
		if m.SenderIndex > 0 {
			sender = senders[m.SenderIndex-1]
		}
		header := map[string]string{}
		for j := 0; j < len(m.Header); j += 2 {
			header[m.Header[j]] = m.Header[j+1]
		}
		if w.env.Header == nil {
			w.env.Header = map[string]string{}
		}
		if types[m.TypeIndex] != w.env.TypeName || targets[m.TargetIndex] != w.env.TargetID ||
			sender != w.env.Sender || m.System != w.env.System || m.SerializerID != w.env.SerializerID ||
			!slices.Equal(m.Payload, w.payload) || !maps.Equal(header, w.env.Header) {
			t.Fatalf("envelope %d = %+v, want %+v", i, m, w)
		}
	}
}

func TestEncoderOutputIsTheSchemasEncoding(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	e := NewBatchEncoder()
	d := NewDecoder()
	for round := range 200 {
		batch := randomBatch(rng)
		e.Reset()
		w := rawWriter{sized: round%2 == 0}
		for _, s := range batch {
			if err := e.Add(&s.env, w, s.payload, 1<<20); err != nil {
				t.Fatal(err)
			}
		}
		frame := e.Frame()

		// The generated code reads it...
		var req ConnectRequest
		if err := proto.Unmarshal(frame, &req); err != nil {
			t.Fatalf("round %d: generated code rejects the frame: %v", round, err)
		}
		pb := req.GetBatch()
		var senders []Sender
		for _, p := range pb.GetSenders() {
			senders = append(senders, Sender{p.GetAddress(), p.GetId()})
		}
		var msgs []Message
		for _, env := range pb.GetEnvelopes() {
			m := Message{TypeIndex: env.GetTypeIndex(), SerializerID: env.GetSerializerId(), TargetIndex: env.GetTargetIndex(),
				SenderIndex: env.GetSenderIndex(), System: env.GetSystem(), Payload: env.GetPayload()}
			for _, h := range env.GetHeader() {
				m.Header = append(m.Header, h.GetKey(), h.GetValue())
			}
			if m.Payload == nil {
				m.Payload = []byte{}
			}
			msgs = append(msgs, m)
		}
		for i := range batch {
			if batch[i].payload == nil {
				batch[i].payload = []byte{}
			}
		}
		check(t, batch, pb.GetTypeNames(), pb.GetTargetIds(), senders, msgs)

		// The same bytes are a ConnectResponse with the same batch, for the
		// way back.
		var resp ConnectResponse
		if err := proto.Unmarshal(frame, &resp); err != nil || !proto.Equal(resp.GetBatch(), pb) {
			t.Fatalf("round %d: as a response: %v, %v", round, resp.GetFrame(), err)
		}
		if ctl, err := decodeResponse(d, frame); err != nil || ctl != nil {
			t.Fatalf("round %d: decode as a response = %v, %v", round, ctl, err)
		}
		check(t, batch, d.Batch.TypeNames, d.Batch.TargetIDs, d.Batch.Senders, nonNilPayloads(d.Batch.Envelopes))

		// ...and so does ours.
		if ctl, err := decodeRequest(d, frame); err != nil || ctl != nil {
			t.Fatalf("round %d: decode = %v, %v", round, ctl, err)
		}
		check(t, batch, d.Batch.TypeNames, d.Batch.TargetIDs, d.Batch.Senders, nonNilPayloads(d.Batch.Envelopes))

		// The canonical encoding of the same batch decodes alike.
		canonical, err := proto.Marshal(&req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeRequest(d, canonical); err != nil {
			t.Fatalf("round %d: canonical encoding: %v", round, err)
		}
		check(t, batch, d.Batch.TypeNames, d.Batch.TargetIDs, d.Batch.Senders, nonNilPayloads(d.Batch.Envelopes))
	}
}

// nonNilPayloads returns msgs with empty payloads as empty slices, as the
// batches under test hold them.
func nonNilPayloads(msgs []Message) []Message {
	for i := range msgs {
		if msgs[i].Payload == nil {
			msgs[i].Payload = []byte{}
		}
	}
	return msgs
}

func TestFailedAddLeavesTheBatchIntact(t *testing.T) {
	e := NewBatchEncoder()
	ok := Envelope{TypeName: "a.A", SerializerID: 1, TargetID: "$1"}
	if err := e.Add(&ok, rawWriter{sized: true}, []byte("one"), 100); err != nil {
		t.Fatal(err)
	}
	before := append([]byte(nil), e.Frame()...)
	bad := Envelope{TypeName: "b.B", SerializerID: 1, TargetID: "$2", Sender: Sender{"h:1", "$x"}}
	if err := e.Add(&bad, failWriter{}, nil, 100); err == nil {
		t.Fatal("add with a failing serializer succeeded")
	}
	for _, sized := range []bool{true, false} {
		if err := e.Add(&bad, freshWriter{rawWriter{sized: sized}}, []byte("{}"), 100); err == nil || !strings.Contains(err.Error(), "instead of appending") {
			t.Fatalf("add with a serializer that does not append (sized %v): %v", sized, err)
		}
	}
	if err := e.Add(&bad, rawWriter{sized: true}, make([]byte, 101), 100); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversized add: %v", err)
	}
	if err := e.Add(&bad, rawWriter{sized: false}, make([]byte, 101), 100); !errors.Is(err, ErrMessageTooLarge) {
		t.Fatalf("oversized unsized add: %v", err)
	}
	// The header counts against the limit: 60 bytes of payload fit, not
	// with a header of more than 40.
	bad.Header = map[string]string{"k": string(make([]byte, 40))}
	for _, sized := range []bool{true, false} {
		if err := e.Add(&bad, rawWriter{sized: sized}, make([]byte, 60), 100); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("add with a large header (sized %v): %v", sized, err)
		}
	}
	bad.Header = nil
	// So do the type name and PIDs, which the frame's tables take in.
	long := bad
	long.TargetID = strings.Repeat("t", 95)
	for _, sized := range []bool{true, false} {
		if err := e.Add(&long, rawWriter{sized: sized}, make([]byte, 10), 100); !errors.Is(err, ErrMessageTooLarge) {
			t.Fatalf("add to a long target id (sized %v): %v", sized, err)
		}
	}
	if got := e.Frame(); !slices.Equal(got, before) || e.Count() != 1 {
		t.Fatalf("failed adds changed the batch")
	}
	// Table entries of the failed adds are gone: the next add re-declares them.
	if err := e.Add(&bad, rawWriter{sized: true}, []byte("two"), 100); err != nil {
		t.Fatal(err)
	}
	d := NewDecoder()
	if _, err := decodeRequest(d, e.Frame()); err != nil {
		t.Fatal(err)
	}
	if len(d.Batch.TypeNames) != 2 || len(d.Batch.Senders) != 1 || len(d.Batch.Envelopes) != 2 || d.Batch.Envelopes[1].Err != nil {
		t.Fatalf("batch after failures = %+v", d.Batch)
	}
}

func TestControlFramesAndMalformedInput(t *testing.T) {
	d := NewDecoder()
	hello, err := proto.Marshal(&ConnectRequest{Frame: &ConnectRequest_Hello{Hello: &Hello{ClusterName: "c", ProtocolVersion: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	req, err := decodeRequest(d, hello)
	if err != nil || req.GetHello().GetClusterName() != "c" {
		t.Fatalf("hello = %v, %v", req, err)
	}
	bye, err := proto.Marshal(&ConnectResponse{Frame: &ConnectResponse_Disconnect{Disconnect: &Disconnect{Message: "bye"}}})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := decodeResponse(d, bye)
	if err != nil || resp.GetDisconnect().GetMessage() != "bye" {
		t.Fatalf("disconnect = %v, %v", resp, err)
	}
	if _, err := decodeResponse(d, []byte("not a protobuf frame at all")); !errors.Is(err, ErrMalformed) {
		t.Errorf("garbage response: err = %v, want ErrMalformed", err)
	}
	for name, frame := range map[string][]byte{
		"empty":          {},
		"truncated tag":  {0x80},
		"truncated body": {0x12, 0x05, 0x01},
		"batch as int":   {0x10, 0x01},
		"bad envelope":   append([]byte{0x12, 0x03}, 0x22, 0x01, 0xff),
		"two batches":    {0x12, 0x00, 0x12, 0x00},
		"garbage":        []byte("not a protobuf frame at all"),
	} {
		if _, err := decodeRequest(d, frame); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err = %v, want ErrMalformed", name, err)
		}
	}
	// Indexes outside the tables mark the envelope, not the frame.
	e := NewBatchEncoder()
	if err := e.Add(&Envelope{TypeName: "a.A", TargetID: "$1"}, rawWriter{sized: true}, []byte("x"), 10); err != nil {
		t.Fatal(err)
	}
	bad := &ConnectRequest{}
	if err := proto.Unmarshal(e.Frame(), bad); err != nil {
		t.Fatal(err)
	}
	bad.GetBatch().Envelopes = append(bad.GetBatch().Envelopes, &MessageEnvelope{TypeIndex: 7}, &MessageEnvelope{TargetIndex: 9},
		&MessageEnvelope{SenderIndex: 3}, &MessageEnvelope{TypeIndex: 7, SenderIndex: 3})
	frame, _ := proto.Marshal(bad)
	if _, err := decodeRequest(d, frame); err != nil {
		t.Fatal(err)
	}
	envs := d.Batch.Envelopes
	if len(envs) != 5 || envs[0].Err != nil || envs[1].Err == nil || envs[2].Err == nil || envs[3].Err == nil || envs[4].Err == nil {
		t.Fatalf("envelope errors = %v", envs)
	}
	// A sender index outside the table is dropped whatever else is wrong:
	// receivers index the table with it before looking at Err.
	for i, m := range envs {
		if int(m.SenderIndex) > len(d.Batch.Senders) {
			t.Errorf("envelope %d keeps sender index %d of %d", i, m.SenderIndex, len(d.Batch.Senders))
		}
	}
	// Unknown fields are skipped, even varints wider than 32 bits.
	unknown := protowire.AppendTag(nil, 99, protowire.VarintType)
	unknown = protowire.AppendVarint(unknown, 1<<40)
	payload := protowire.AppendTag(nil, envPayload, protowire.BytesType)
	payload = protowire.AppendBytes(payload, []byte("x"))
	if m, err := decodeEnvelope(append(unknown, payload...)); err != nil || string(m.Payload) != "x" {
		t.Fatalf("envelope with an unknown wide field: %v, %v", m, err)
	}
	// A known index wider than 32 bits is malformed.
	wide := protowire.AppendTag(nil, envType, protowire.VarintType)
	wide = protowire.AppendVarint(wide, 1<<40)
	if _, err := decodeEnvelope(wide); !errors.Is(err, ErrMalformed) {
		t.Fatalf("wide type index: %v, want ErrMalformed", err)
	}
}

func FuzzDecodeRequest(f *testing.F) {
	e := NewBatchEncoder()
	rng := rand.New(rand.NewPCG(3, 4))
	for range 4 {
		e.Reset()
		for _, s := range randomBatch(rng) {
			_ = e.Add(&s.env, rawWriter{sized: true}, s.payload, 1<<20)
		}
		f.Add(append([]byte(nil), e.Frame()...))
	}
	hello, _ := proto.Marshal(&ConnectRequest{Frame: &ConnectRequest_Hello{Hello: &Hello{ClusterName: "c", MemberId: "m", Address: "127.0.0.1:1", ProtocolVersion: 1}}})
	f.Add(hello)
	f.Add([]byte{})
	f.Add([]byte{0x12, 0x00})
	d, back := NewDecoder(), NewDecoder()
	f.Fuzz(func(t *testing.T, frame []byte) {
		// A frame the other way decodes alike when it is a batch.
		resp, respErr := decodeResponse(back, frame)
		if respErr != nil && !errors.Is(respErr, ErrMalformed) {
			t.Fatalf("response error %v does not wrap ErrMalformed", respErr)
		}
		req, err := decodeRequest(d, frame)
		if err == nil && req == nil && (respErr != nil || resp != nil || len(back.Batch.Envelopes) != len(d.Batch.Envelopes)) {
			t.Fatalf("a batch request decodes as a response to %v, %v", resp, respErr)
		}
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if req != nil {
			return
		}
		// Whatever decodes has checked indexes; a sender index is valid
		// even on an envelope with an error.
		for _, m := range d.Batch.Envelopes {
			if m.SenderIndex > 0 {
				_ = d.Batch.Senders[m.SenderIndex-1]
			}
			if m.Err != nil {
				continue
			}
			_ = d.Batch.TypeNames[m.TypeIndex]
			_ = d.Batch.TargetIDs[m.TargetIndex]
			if m.SenderIndex > 0 {
				_ = d.Batch.Senders[m.SenderIndex-1]
			}
		}
	})
}

// decodeRequest decodes a frame from a dialer: nil and d.Batch filled for a
// batch, else the control frame.
func decodeRequest(d *Decoder, frame []byte) (*ConnectRequest, error) {
	m, err := d.Decode(frame, NewRequest)
	req, _ := m.(*ConnectRequest)
	return req, err
}

// decodeResponse is decodeRequest for a frame from a listener.
func decodeResponse(d *Decoder, frame []byte) (*ConnectResponse, error) {
	m, err := d.Decode(frame, NewResponse)
	resp, _ := m.(*ConnectResponse)
	return resp, err
}

// The decoder interns type names and ids, which recur, but not futures'
// ids, which it sees once each: they would only churn its table.
func TestDecoderInternsNoFutureIDs(t *testing.T) {
	e := NewBatchEncoder()
	for _, env := range []Envelope{
		{TypeName: "a.A", TargetID: "actor", Sender: Sender{Address: "peer:1", ID: actor.FutureIDPrefix + "1"}},
		{TypeName: "a.A", TargetID: actor.FutureIDPrefix + "2"},
	} {
		if err := e.Add(&env, rawWriter{sized: true}, []byte("x"), 1<<10); err != nil {
			t.Fatal(err)
		}
	}
	d := NewDecoder()
	if _, err := decodeRequest(d, e.Frame()); err != nil {
		t.Fatal(err)
	}
	b := d.Batch
	if got := []string{b.TargetIDs[0], b.TargetIDs[1], b.Senders[0].ID}; !slices.Equal(got, []string{"actor", actor.FutureIDPrefix + "2", actor.FutureIDPrefix + "1"}) {
		t.Fatalf("decoded ids %q", got)
	}
	if got := slices.Sorted(maps.Keys(d.intern)); !slices.Equal(got, []string{"a.A", "actor", "peer:1"}) {
		t.Fatalf("interned %q, want the type name, the actor's id and the address", got)
	}
}
