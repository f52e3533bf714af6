package remote

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	grpcpeer "google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

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

// inbound is one stream from a dialer. Besides the dialer's batches, it
// carries this system's batches back to the dialer when an endpoint claims
// it (see link), so that two systems need only one stream.
type inbound struct {
	*receiver
	stream grpc.ServerStream

	// The dialer's member id, and its limits for what we send back, from
	// its Hello.
	memberID         string
	maxFrame, maxMsg int

	sendMu  sync.Mutex // serializes writes, and guards:
	claimed bool       // an endpoint writes batches on the stream
	closed  bool       // no more writes: a Disconnect went out, or serve ended

	// cut, closed by abort, ends the handler at once, which ends the
	// stream: the only way to end a write that waits for a dialer that
	// does not read. aborted then refuses every later write.
	cut       chan struct{}
	abortOnce sync.Once
	aborted   atomic.Bool

	done    chan struct{} // closed when serve has returned
	doneErr error         // why serve returned; set before done is closed
}

func (s *service) Connect(stream wire.RemotingService_ConnectServer) error {
	r := s.r
	hello, err := r.awaitHello(stream)
	if err != nil {
		return err
	}
	in := &inbound{
		receiver: newReceiver(r, hello.GetAddress()), stream: stream, done: make(chan struct{}), cut: make(chan struct{}),
		memberID: hello.GetMemberId(),
		maxFrame: min(r.cfg.MaxFrameSize, int(hello.GetMaxFrameSize())),
		maxMsg:   min(r.cfg.MaxMessageSize, int(hello.GetMaxMessageSize())),
	}
	if reason, msg := r.admit(hello, verifiedPeer(stream.Context())); reason != wire.DisconnectReason_DISCONNECT_REASON_UNSPECIFIED {
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
	// A restart of the dialer is found before its messages are delivered.
	r.peer(in.address).sawMember(in.memberID)
	// The dialer's frames are read on a goroutine of their own, so that
	// abort can end the handler while a read or a write waits.
	served := make(chan error, 1)
	go func() {
		defer r.untrackInbound(in)
		err := in.serve()
		// An endpoint writing on the stream stops at once: gRPC forbids
		// writes once the handler has returned.
		in.sendMu.Lock()
		in.closed = true
		in.sendMu.Unlock()
		in.doneErr = err
		if err == nil {
			in.doneErr = endpointTerminated(in.address, "its stream to us ended")
		}
		close(in.done)
		served <- err
	}()
	select {
	case err = <-served:
		return err
	case <-in.cut:
		// Returning ends the stream: a write waiting on it fails, and so
		// does the read, after which serve's goroutine ends.
		return status.Error(codes.Aborted, "remote: the endpoint to the dialer was terminated")
	}
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
		in := &inbound{receiver: &receiver{r: r}, stream: stream}
		in.disconnect(wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR, msg)
		return nil, status.Error(codes.InvalidArgument, msg)
	}
	return req.GetHello(), nil
}

// verifiedPeer returns the dialer's client certificate if mutual TLS
// verified it, or nil.
func verifiedPeer(ctx context.Context) *x509.Certificate {
	p, ok := grpcpeer.FromContext(ctx)
	if !ok {
		return nil
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok || len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return nil
	}
	return info.State.VerifiedChains[0][0]
}

// admit checks a Hello, and the dialer's verified certificate if it has
// one; it returns a reason to refuse the stream, or UNSPECIFIED to accept
// it.
func (r *Remote) admit(h *wire.Hello, cert *x509.Certificate) (wire.DisconnectReason, string) {
	switch {
	case h.GetProtocolVersion() != protocolVersion:
		return wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR,
			fmt.Sprintf("protocol version %d is not supported (this system speaks %d)", h.GetProtocolVersion(), protocolVersion)
	case h.GetClusterName() != r.cfg.ClusterName:
		return wire.DisconnectReason_DISCONNECT_REASON_CLUSTER_MISMATCH,
			fmt.Sprintf("this system belongs to cluster %q, the dialer %s to cluster %q", r.cfg.ClusterName, h.GetAddress(), h.GetClusterName())
	}
	host, _, err := net.SplitHostPort(h.GetAddress())
	if err != nil {
		return wire.DisconnectReason_DISCONNECT_REASON_PROTOCOL_ERROR, fmt.Sprintf("the dialer's address %q is not host:port", h.GetAddress())
	}
	if cert != nil && !r.cfg.TrustClaimedAddresses {
		if err := cert.VerifyHostname(host); err != nil {
			return wire.DisconnectReason_DISCONNECT_REASON_ADDRESS_NOT_CERTIFIED,
				fmt.Sprintf("the dialer's certificate is not valid for the address it advertises, %s: %v", h.GetAddress(), err)
		}
	}
	return wire.DisconnectReason_DISCONNECT_REASON_UNSPECIFIED, ""
}

// send writes a frame (a control message or a *frame) unless the stream
// is closed for writes.
func (in *inbound) send(f any) error {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	if in.closed || in.aborted.Load() {
		return endpointTerminated(in.address, "the stream is closing")
	}
	return in.stream.SendMsg(f)
}

// disconnect tells the dialer why the stream ends; nothing is written
// after it.
func (in *inbound) disconnect(reason wire.DisconnectReason, msg string) {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	in.disconnectLocked(reason, msg)
}

// leaving tells the dialer that this system is going away, unless an
// endpoint writes on the stream: that one says it after its flush.
func (in *inbound) leaving() {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	if !in.claimed {
		in.disconnectLocked(wire.DisconnectReason_DISCONNECT_REASON_SHUTDOWN, "shutting down")
	}
}

func (in *inbound) disconnectLocked(reason wire.DisconnectReason, msg string) {
	if in.closed || in.aborted.Load() {
		return
	}
	in.closed = true
	_ = in.stream.SendMsg(&wire.ConnectResponse{Frame: &wire.ConnectResponse_Disconnect{Disconnect: &wire.Disconnect{Reason: reason, Message: msg}}})
}

// claim reserves the stream for the endpoint to its dialer; it fails if
// another endpoint has it, the stream is closing, or the dialer's limits
// leave no room for a message.
func (in *inbound) claim() bool {
	in.sendMu.Lock()
	defer in.sendMu.Unlock()
	if in.claimed || in.closed || in.aborted.Load() || in.maxMsg <= 0 || in.maxFrame <= in.maxMsg {
		return false
	}
	in.claimed = true
	return true
}

// abort ends the stream at once, without waiting for a write in progress
// (which holds sendMu): the handler returns, and gRPC ends the stream.
func (in *inbound) abort() {
	in.abortOnce.Do(func() {
		in.aborted.Store(true)
		close(in.cut)
	})
}

// link returns the claimed stream as an endpoint's connection. When ctx
// (the endpoint's) is cancelled while the endpoint holds the stream, the
// stream is aborted, as a dialed connection is closed: else a write that
// waits for a dialer that does not read would hold the endpoint forever.
func (in *inbound) link(ctx context.Context) *conn {
	stopAbort := context.AfterFunc(ctx, in.abort)
	return &conn{
		maxFrame: in.maxFrame, maxMsg: in.maxMsg,
		send: func(f *frame) error { return in.send(f) },
		goodbye: func() error {
			in.disconnect(wire.DisconnectReason_DISCONNECT_REASON_SHUTDOWN, "shutting down")
			return nil
		},
		ended: in.done, endErr: func() error { return in.doneErr },
		close: func() {
			stopAbort()
			in.sendMu.Lock()
			in.claimed = false
			in.sendMu.Unlock()
		},
	}
}

// serve reads frames until the stream ends or the dialer says goodbye.
func (in *inbound) serve() error {
	bye, err := in.receive(in.stream, wire.NewRequest)
	if bye != nil {
		in.r.logger.Info("remote: peer is leaving", "peer", in.address, "message", bye.GetMessage())
		in.r.peerLeft(in.address, disconnectError(in.address, bye))
	}
	return err
}
