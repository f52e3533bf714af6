package remote

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"slices"
	"sync"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/keepalive"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// activatorName is the id of the actor that serves remote spawn requests.
const activatorName = "$remote-activator"

// States of a Remote.
const (
	stateCreated  = iota
	stateRunning  // started
	stateStopping // Shutdown or Close began, and may have finished
)

// Remote connects an actor system to other systems over gRPC. Once started,
// a PID with another system's address is used exactly like a local one.
type Remote struct {
	cfg         Config
	sys         *actor.System
	logger      *slog.Logger
	serializers *Serializers
	json        *JSONSerializer
	address     string // advertised
	bound       string // the listener's address

	kindsMu sync.RWMutex
	kinds   map[string]*actor.Props

	mu        sync.Mutex
	state     int
	peers     map[string]*peer
	endpoints map[*endpoint]struct{}
	inbound   map[*inbound]struct{}
	// inboundFrom holds the newest inbound stream from each dialer
	// address, which the endpoint to that address writes on when it can.
	inboundFrom map[string]*inbound
	writers     sync.WaitGroup
	server      *grpc.Server
	serveDone   chan struct{}
	activator   *actor.PID
}

// New returns a Remote for sys; call Start to listen and connect. Zero
// fields of cfg take their defaults; invalid ones yield an error.
func New(sys *actor.System, cfg Config) (*Remote, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	json := NewJSONSerializer()
	return &Remote{
		cfg:         cfg,
		sys:         sys,
		logger:      sys.Logger().With("member", cfg.MemberID),
		serializers: NewSerializers(json),
		json:        json,
		kinds:       make(map[string]*actor.Props),
		peers:       make(map[string]*peer),
		endpoints:   make(map[*endpoint]struct{}),
		inbound:     make(map[*inbound]struct{}),
		inboundFrom: make(map[string]*inbound),
	}, nil
}

// Start listens on BindAddress, makes the system's PIDs carry the
// advertised address, and routes PIDs of other addresses to their systems.
func (r *Remote) Start() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateCreated {
		return errors.New("remote: already started")
	}
	lis, err := net.Listen("tcp", r.cfg.BindAddress)
	if err != nil {
		return fmt.Errorf("remote: listen on %s: %w", r.cfg.BindAddress, err)
	}
	r.bound = lis.Addr().String()
	r.address = r.cfg.AdvertisedAddress
	if r.address == "" {
		r.address = r.bound
	}
	opts := []grpc.ServerOption{
		grpc.MaxRecvMsgSize(r.cfg.MaxFrameSize),
		grpc.MaxSendMsgSize(r.cfg.MaxFrameSize),
		grpc.InitialWindowSize(int32(r.cfg.FlowControlWindow)),
		grpc.InitialConnWindowSize(int32(r.cfg.FlowControlWindow)),
		grpc.KeepaliveParams(keepalive.ServerParameters{Time: r.cfg.KeepaliveInterval, Timeout: r.cfg.KeepaliveTimeout}),
		// Peers ping every KeepaliveInterval; allow that (gRPC's default
		// would close connections that ping more than every 5 minutes).
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: r.cfg.KeepaliveInterval / 2, PermitWithoutStream: true}),
	}
	if r.cfg.ServerTLS != nil {
		switch r.cfg.ServerTLS.ClientAuth {
		case tls.RequestClientCert, tls.RequireAnyClientCert, tls.VerifyClientCertIfGiven:
			r.logger.Warn("remote: ServerTLS asks dialers for a certificate but accepts them without a verified one, "+
				"and believes such dialers about their address; use tls.RequireAndVerifyClientCert for mutual TLS",
				"client_auth", r.cfg.ServerTLS.ClientAuth.String())
		}
		opts = append(opts, grpc.Creds(credentials.NewTLS(r.cfg.ServerTLS.Clone())))
	}
	r.server = grpc.NewServer(opts...)
	wire.RegisterRemotingServiceServer(r.server, &service{r: r})

	r.sys.Registry().SetAddress(r.address)
	r.sys.Registry().RegisterResolver(r.resolve)
	r.activator, err = r.sys.SpawnNamed(actor.PropsFromFunc(r.activate), activatorName)
	if err != nil {
		_ = lis.Close()
		return fmt.Errorf("remote: start the activator: %w", err)
	}
	r.serveDone = make(chan struct{})
	go func() {
		defer close(r.serveDone)
		if err := r.server.Serve(lis); err != nil {
			r.logger.Error("remote: server stopped", "error", err)
		}
	}()
	r.state = stateRunning
	r.logger.Info("remote: listening", "address", r.address, "bind", r.bound, "cluster", r.cfg.ClusterName)
	return nil
}

// Address returns the advertised address: the address in this system's
// PIDs. It is empty before Start.
func (r *Remote) Address() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.address
}

// ListenAddress returns the address the listener is bound to: the port
// taken when BindAddress asks for any (port 0), also when AdvertisedAddress
// is set (behind a proxy, a NAT or a port mapping, Address is the one
// peers dial). It is empty before Start.
func (r *Remote) ListenAddress() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.bound
}

// Config returns the configuration, defaults filled in.
func (r *Remote) Config() Config { return r.cfg }

// Serializers returns the serializer registry, to register your own.
func (r *Remote) Serializers() *Serializers { return r.serializers }

// JSON returns the JSON serializer, to register types that travel as JSON.
func (r *Remote) JSON() *JSONSerializer { return r.json }

// Register makes props spawnable by other systems under kind.
func (r *Remote) Register(kind string, props *actor.Props) {
	r.kindsMu.Lock()
	defer r.kindsMu.Unlock()
	r.kinds[kind] = props
}

// resolve is the registry's resolver for non-local addresses.
func (r *Remote) resolve(address string) (actor.Process, bool) {
	return r.peer(address), true
}

// peer returns the peer at address, made on first use.
func (r *Remote) peer(address string) *peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.peers[address]
	if p == nil {
		p = &peer{r: r, address: address}
		r.peers[address] = p
	}
	return p
}

func (r *Remote) existingPeer(address string) *peer {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.peers[address]
}

// publicAddress rewrites LocalAddress (PIDs made before Start) to ours.
func (r *Remote) publicAddress(address string) string {
	if address == actor.LocalAddress {
		return r.address
	}
	return address
}

// TerminateEndpoint gives up on the peer at address at once: messages
// queued for it go to dead letters with reason, and watchers of its actors
// receive Terminated with AddressTerminated. The next message to it
// connects afresh. Cluster membership calls this when a member leaves.
func (r *Remote) TerminateEndpoint(address string, reason error) {
	if reason == nil {
		reason = endpointTerminated(address, "")
	}
	r.peerLeft(address, reason)
}

// peerLeft ends the endpoint to address, or, with none, still tells the
// watchers of the peer's actors.
func (r *Remote) peerLeft(address string, reason error) {
	p := r.existingPeer(address)
	if p == nil {
		return
	}
	if ep := p.ep.Load(); ep != nil {
		ep.stop(reason, false)
		return
	}
	p.addressTerminated()
}

// ifRunning calls f under r.mu if the transport is running, and reports
// whether it did.
func (r *Remote) ifRunning(f func()) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.state != stateRunning {
		return false
	}
	f()
	return true
}

// track registers a new endpoint; it fails once shutdown has begun.
func (r *Remote) track(ep *endpoint) bool {
	return r.ifRunning(func() {
		r.endpoints[ep] = struct{}{}
		r.writers.Add(1)
	})
}

func (r *Remote) untrack(ep *endpoint) {
	r.mu.Lock()
	delete(r.endpoints, ep)
	r.mu.Unlock()
	r.writers.Done()
}

// trackInbound registers a new inbound stream; it fails once shutdown has
// begun.
func (r *Remote) trackInbound(in *inbound) bool {
	return r.ifRunning(func() {
		r.inbound[in] = struct{}{}
		r.inboundFrom[in.address] = in
	})
}

func (r *Remote) untrackInbound(in *inbound) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.inbound, in)
	if r.inboundFrom[in.address] == in {
		delete(r.inboundFrom, in.address)
	}
}

// claimInbound returns the stream address dialed to us, claimed for the
// endpoint to address, or nil if there is none to claim.
func (r *Remote) claimInbound(address string) *inbound {
	r.mu.Lock()
	in := r.inboundFrom[address]
	r.mu.Unlock()
	if in == nil || !in.claim() {
		return nil
	}
	return in
}

// Shutdown leaves gracefully, within ctx: it tells the peers that send to
// this system that it is leaving, sends what is queued for each peer and
// says goodbye, then stops the server. Messages still queued when ctx ends
// go to dead letters with ErrShutdown, and the connections are closed.
// Later sends to other systems go to dead letters. The actor system itself
// keeps running; shut it down after.
func (r *Remote) Shutdown(ctx context.Context) error {
	endpoints, inbound, ok := r.beginStop()
	if !ok {
		return nil
	}
	reason := fmt.Errorf("%w: %s", ErrShutdown, r.address)
	flushed := make(chan struct{})
	go func() {
		defer close(flushed)
		// Peers stop sending to us (but for those whose stream an
		// endpoint writes on: it tells them after its flush)...
		for _, in := range inbound {
			in.leaving()
		}
		// ...while we flush what we owe them.
		for _, ep := range endpoints {
			ep.stop(reason, true)
		}
		r.writers.Wait()
		// Every endpoint is done. One that wrote on a peer's stream said
		// goodbye on it after its flush, unless it ended first: tell
		// those peers now, or they would keep the stream (and the server)
		// open.
		for _, in := range inbound {
			in.disconnect(wire.DisconnectReason_DISCONNECT_REASON_SHUTDOWN, "shutting down")
		}
	}()
	var err error
	select {
	case <-flushed:
	case <-ctx.Done():
		err = fmt.Errorf("remote: shutdown: %w", context.Cause(ctx))
		for _, ep := range endpoints {
			ep.stop(reason, false)
			ep.cancel()
		}
		// Cutting the connections also ends writes on peers' streams,
		// which wait for as long as a peer does not read.
		r.server.Stop()
		<-flushed
	}

	stopped := make(chan struct{})
	go func() {
		r.server.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		r.server.Stop()
		<-stopped
		if err == nil {
			err = fmt.Errorf("remote: shutdown: %w", context.Cause(ctx))
		}
	}
	<-r.serveDone
	_ = r.sys.StopAndWait(context.WithoutCancel(ctx), r.activator)
	r.logger.Info("remote: stopped", "address", r.address)
	return err
}

// Close stops the transport at once, without telling peers or flushing:
// queued messages go to dead letters, connections are cut, and peers find
// out as they would if the process died. Use Shutdown to leave gracefully.
func (r *Remote) Close() {
	endpoints, _, ok := r.beginStop()
	if !ok {
		return
	}
	for _, ep := range endpoints {
		ep.stop(fmt.Errorf("%w: %s closed", ErrShutdown, r.address), false)
	}
	r.server.Stop() // first: it ends writes waiting for a peer to read
	r.writers.Wait()
	<-r.serveDone
	r.sys.Stop(r.activator)
	r.logger.Info("remote: closed", "address", r.address)
}

// beginStop moves a running transport to stopping, after which no endpoint
// or inbound stream is added, and returns those of the moment. It reports
// false if the transport was not running (not started, or stopping
// already).
func (r *Remote) beginStop() (endpoints []*endpoint, inbound []*inbound, ok bool) {
	ok = r.ifRunning(func() {
		r.state = stateStopping
		endpoints = slices.Collect(maps.Keys(r.endpoints))
		inbound = slices.Collect(maps.Keys(r.inbound))
	})
	return endpoints, inbound, ok
}
