package remote

import (
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// protocolVersion is the version of proto/troupe/remote/v1 spoken here.
const protocolVersion = 1

// maxInboundCache bounds each of an inbound stream's caches: of target and
// sender PIDs (which keep their resolved processes, sparing lookups) and of
// decoders. A full cache is emptied.
const maxInboundCache = 8192

// UndecodedMessage stands in dead-letter events for a message that arrived
// but could not be decoded (unknown type, oversized, corrupt).
type UndecodedMessage struct {
	// TypeName is the type name the envelope gave; empty if the envelope
	// itself was malformed.
	TypeName string
	// SerializerID is the ID of the serializer the envelope named; 0 if
	// the envelope itself was malformed.
	SerializerID uint32
	// Size is the payload's length in bytes.
	Size int
}

// service serves the streams peers open to deliver messages here.
type service struct {
	wire.UnimplementedRemotingServiceServer
	r *Remote
}

// inbound is one stream from a dialer.
type inbound struct {
	r       *Remote
	stream  grpc.ServerStream
	address string // the dialer's advertised address
	sendMu  sync.Mutex

	// Caches across frames, so that a frame's tables resolve without
	// allocating: PIDs (which keep their resolved processes) and decoders.
	targets map[string]*actor.PID
	senders map[wire.Sender]*actor.PID
	types   map[typeKey]decoder

	// The current frame's tables, resolved once per frame.
	frameTargets []*actor.PID
	frameSenders []*actor.PID
	frameTypes   []decoder
}

// typeKey names a type as an envelope does.
type typeKey struct {
	serializer uint32
	name       string
}

// decoder turns payloads into messages of one type.
type decoder struct {
	key typeKey
	fn  func([]byte) (any, error) // from the serializer's decoderFor
	err error                     // why the type cannot be decoded
}

func (s *service) Connect(stream wire.RemotingService_ConnectServer) error {
	r := s.r
	hello, err := r.awaitHello(stream)
	if err != nil {
		return err
	}
	in := &inbound{
		r: r, stream: stream, address: hello.GetAddress(),
		targets: make(map[string]*actor.PID), senders: make(map[wire.Sender]*actor.PID), types: make(map[typeKey]decoder),
	}
	if reason, msg := r.admit(hello); reason != wire.DisconnectReason_DISCONNECT_REASON_UNSPECIFIED {
		r.logger.Warn("remote: refused a connection", "peer", hello.GetAddress(), "member", hello.GetMemberId(), "reason", msg)
		in.disconnect(reason, msg)
		return status.Error(codes.FailedPrecondition, msg)
	}
	welcome := &wire.ConnectResponse{Frame: &wire.ConnectResponse_Welcome{Welcome: &wire.Welcome{
		ProtocolVersion: protocolVersion, ClusterName: r.cfg.ClusterName, MemberId: r.cfg.MemberID,
		MaxFrameSize: uint32(r.cfg.MaxFrameSize), MaxMessageSize: uint32(r.cfg.MaxMessageSize),
	}}}
	if err := in.send(welcome); err != nil {
		return err
	}
	if !r.trackInbound(in) {
		in.disconnect(wire.DisconnectReason_DISCONNECT_REASON_SHUTDOWN, "shutting down")
		return status.Error(codes.Unavailable, "shutting down")
	}
	defer r.untrackInbound(in)
	return in.serve()
}

// awaitHello reads the first frame within HandshakeTimeout. It reads a raw
// frame rather than a ConnectRequest through the codec, so that a first
// frame that is not protobuf at all still gets a Disconnect.
func (r *Remote) awaitHello(stream grpc.ServerStream) (*wire.Hello, error) {
	type result struct {
		f   frame
		err error
	}
	got := make(chan result, 1)
	go func() {
		var res result
		res.err = stream.RecvMsg(&res.f)
		got <- res
	}()
	t := time.NewTimer(r.cfg.HandshakeTimeout)
	defer t.Stop()
	var res result
	select {
	case res = <-got:
	case <-t.C:
		r.logger.Warn("remote: no handshake", "timeout", r.cfg.HandshakeTimeout)
		return nil, status.Errorf(codes.DeadlineExceeded, "remote: no Hello within %v", r.cfg.HandshakeTimeout)
	}
	if res.err != nil {
		return nil, res.err
	}
	var req wire.ConnectRequest
	if err := proto.Unmarshal(res.f.data, &req); err != nil || req.GetHello() == nil {
		msg := "the first frame must be a Hello"
		in := &inbound{r: r, stream: stream}
		in.disconnect(wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR, msg)
		return nil, status.Error(codes.InvalidArgument, msg)
	}
	return req.GetHello(), nil
}

// admit checks a Hello; it returns a reason to refuse the stream, or
// UNSPECIFIED to accept it.
func (r *Remote) admit(h *wire.Hello) (wire.DisconnectReason, string) {
	switch {
	case h.GetProtocolVersion() != protocolVersion:
		return wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR,
			fmt.Sprintf("protocol version %d is not supported (this system speaks %d)", h.GetProtocolVersion(), protocolVersion)
	case h.GetClusterName() != r.cfg.ClusterName:
		return wire.DisconnectReason_DISCONNECT_REASON_CLUSTER_MISMATCH,
			fmt.Sprintf("this system belongs to cluster %q, the dialer %s to cluster %q", r.cfg.ClusterName, h.GetAddress(), h.GetClusterName())
	}
	if _, _, err := net.SplitHostPort(h.GetAddress()); err != nil {
		return wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR, fmt.Sprintf("the dialer's address %q is not host:port", h.GetAddress())
	}
	return wire.DisconnectReason_DISCONNECT_REASON_UNSPECIFIED, ""
}

func (in *inbound) send(resp *wire.ConnectResponse) error {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	return in.stream.SendMsg(resp)
}

// disconnect tells the dialer why the stream ends.
func (in *inbound) disconnect(reason wire.DisconnectReason, msg string) {
	_ = in.send(&wire.ConnectResponse{Frame: &wire.ConnectResponse_Disconnect{Disconnect: &wire.Disconnect{Reason: reason, Message: msg}}})
}

// serve reads frames until the stream ends.
func (in *inbound) serve() error {
	r := in.r
	dec := wire.NewDecoder()
	var f frame
	for {
		if err := in.stream.RecvMsg(&f); err != nil {
			return err
		}
		req, err := dec.DecodeRequest(f.data)
		if err != nil {
			// gRPC keeps frames apart, so the stream is still in step: drop
			// this frame and go on.
			r.logger.Error("remote: dropped a malformed frame", "peer", in.address, "bytes", len(f.data), "error", err)
			continue
		}
		if req != nil {
			if d := req.GetDisconnect(); d != nil {
				r.logger.Info("remote: peer is leaving", "peer", in.address, "message", d.GetMessage())
				r.peerLeft(in.address, disconnectError(in.address, d))
				return nil
			}
			r.logger.Error("remote: unexpected frame", "peer", in.address, "frame", fmt.Sprintf("%T", req.GetFrame()))
			continue
		}
		r.cfg.Metrics.BatchReceived(in.address, len(dec.Batch.Envelopes), len(f.data))
		in.resolveTables(&dec.Batch)
		for i := range dec.Batch.Envelopes {
			in.deliver(&dec.Batch, &dec.Batch.Envelopes[i])
		}
	}
}

// resolveTables turns the frame's tables into PIDs and decoders.
func (in *inbound) resolveTables(b *wire.Batch) {
	in.frameTargets = in.frameTargets[:0]
	for _, id := range b.TargetIDs {
		in.frameTargets = append(in.frameTargets, in.targetPID(id))
	}
	in.frameSenders = in.frameSenders[:0]
	for _, s := range b.Senders {
		in.frameSenders = append(in.frameSenders, in.senderPID(s))
	}
	// Slots are filled by the first envelope of each type (see deliver).
	in.frameTypes = append(in.frameTypes[:0], make([]decoder, len(b.TypeNames))...)
}

// decoderFor returns the cached decoder of a type.
func (in *inbound) decoderFor(k typeKey) decoder {
	if d, ok := in.types[k]; ok {
		return d
	}
	d := decoder{key: k}
	if ser, ok := in.r.serializers.byID(k.serializer); ok {
		d.fn, d.err = ser.decoderFor(k.name)
	} else {
		d.err = fmt.Errorf("%w: %s: no serializer %d", ErrUnknownType, k.name, k.serializer)
	}
	if len(in.types) >= maxInboundCache {
		clear(in.types)
	}
	in.types[k] = d
	return d
}

// resolved reports whether d was made by decoderFor: a slot of the frame's
// type table is zero until its first envelope, and a zero key is no proof
// of a resolved slot (a peer may send serializer 0 and an empty name).
func (d *decoder) resolved() bool { return d.fn != nil || d.err != nil }

// decode decodes a payload.
func (d *decoder) decode(payload []byte) (any, error) {
	if d.err != nil {
		return nil, d.err
	}
	msg, err := d.fn(payload)
	if err != nil && !errors.Is(err, ErrUnknownType) {
		err = fmt.Errorf("%w: %v", ErrProtocol, err)
	}
	return msg, err
}

// deliver hands one message to its local target.
func (in *inbound) deliver(b *wire.Batch, m *wire.Message) {
	r := in.r
	var sender *actor.PID
	if m.SenderIndex > 0 {
		sender = in.frameSenders[m.SenderIndex-1]
	}
	if m.Err != nil {
		r.logger.Error("remote: dropped a malformed message", "peer", in.address, "error", m.Err)
		if sender != nil {
			r.sys.DeadLetter(nil, &actor.Envelope{Message: UndecodedMessage{Size: len(m.Payload)}, Sender: sender}, m.Err)
		}
		return
	}
	target := in.frameTargets[m.TargetIndex]
	d := &in.frameTypes[m.TypeIndex]
	if k := (typeKey{m.SerializerID, b.TypeNames[m.TypeIndex]}); !d.resolved() {
		*d = in.decoderFor(k) // the first envelope of this type in the frame
	} else if d.key != k {
		other := in.decoderFor(k) // same name, another serializer: rare
		d = &other
	}
	var msg any
	var err error
	// The header counts, as on the sender (which counts its encoding: a
	// little more than the bare strings counted here).
	size := len(m.Payload)
	for _, s := range m.Header {
		size += len(s)
	}
	if size > r.cfg.MaxMessageSize {
		err = fmt.Errorf("%w: %s of %d bytes from %s, limit %d", ErrMessageTooLarge, d.key.name, size, in.address, r.cfg.MaxMessageSize)
	} else {
		msg, err = d.decode(m.Payload)
	}
	if err != nil {
		r.sys.DeadLetter(target, &actor.Envelope{
			Message: UndecodedMessage{TypeName: d.key.name, SerializerID: m.SerializerID, Size: len(m.Payload)},
			Sender:  sender,
		}, err)
		return
	}
	if m.System {
		if t, ok := msg.(*actor.Terminated); ok && t.GetWho() != nil {
			if p := r.existingPeer(t.Who.Address); p != nil {
				p.removeWatch(t.Who.Id, target)
			}
		}
		r.sys.SendSystemMessage(target, msg)
		return
	}
	var item any = msg
	if sender != nil || m.Header != nil {
		env := &actor.Envelope{Message: msg, Sender: sender}
		if m.Header != nil {
			env.Header = make(actor.Header, len(m.Header)/2)
			for i := 0; i < len(m.Header); i += 2 {
				env.Header[m.Header[i]] = m.Header[i+1]
			}
		}
		item = env
	}
	r.sys.Send(target, item)
}

// targetPID returns a cached PID for a local actor id.
func (in *inbound) targetPID(id string) *actor.PID {
	if pid, ok := in.targets[id]; ok {
		return pid
	}
	if len(in.targets) >= maxInboundCache {
		clear(in.targets)
	}
	pid := actor.NewPID(in.r.address, id)
	in.targets[id] = pid
	return pid
}

// senderPID returns a cached PID for a sender.
func (in *inbound) senderPID(s wire.Sender) *actor.PID {
	if pid, ok := in.senders[s]; ok {
		return pid
	}
	if len(in.senders) >= maxInboundCache {
		clear(in.senders)
	}
	pid := actor.NewPID(s.Address, s.ID)
	in.senders[s] = pid
	return pid
}
