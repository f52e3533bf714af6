package remote

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/keepalive"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/mpsc"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// outbound is a message queued for a peer, stored by value in the send
// queue: queuing allocates nothing.
type outbound struct {
	target   *actor.PID
	item     any // the message, or an *actor.Envelope around it
	system   bool
	era      uint32 // a Watch's or Unwatch's epoch, a Terminated's incarnation (see stale)
	ser      *serializerEntry
	typeName string
}

// timerPool recycles the timers of senders waiting for room: under
// sustained load they wait once per batch the writer frees.
var timerPool sync.Pool

// peer stands for every PID at one address. The actor registry caches it
// per address for the life of the system; the endpoint behind it (one
// connection's lifetime) comes and goes.
type peer struct {
	r       *Remote
	address string
	ep      atomic.Pointer[endpoint]

	// seen serializes sawMember, which streams call before delivering the
	// peer's messages: held while the old process's watches of local
	// actors are dropped, not under mu, since the actors' processes may
	// send on through this peer.
	seen sync.Mutex

	mu      sync.Mutex
	watches watchSet // the peer's actors (remote watchee ids) watched here
	// watchedBy holds the peer's watches of local actors (local watchee
	// ids).
	watchedBy watchSet
	member    string // the member id of the last connection's peer
	// epoch counts the times the watches were forgotten, their watchers
	// told (written under mu). A Watch or Unwatch queued in an earlier
	// epoch was for a process that is gone: it is not sent (see stale).
	epoch atomic.Uint32
	// incarnation counts the peer's restarts seen (written under mu): a
	// Terminated queued for a watcher of an earlier one is not sent.
	incarnation atomic.Uint32
}

type watcherKey struct{ address, id string }

// watchSet maps a watchee's id to its watchers. The zero value is empty
// and ready to use.
type watchSet map[string]map[watcherKey]*actor.PID

// add records watcher of watchee; a watcher watches an actor once.
func (s *watchSet) add(watchee string, watcher *actor.PID) {
	if *s == nil {
		*s = make(watchSet)
	}
	set := (*s)[watchee]
	if set == nil {
		set = make(map[watcherKey]*actor.PID)
		(*s)[watchee] = set
	}
	set[watcherKey{watcher.Address, watcher.Id}] = watcher
}

// remove forgets watcher of watchee, and reports whether it was there.
func (s watchSet) remove(watchee string, watcher *actor.PID) bool {
	set := s[watchee]
	k := watcherKey{watcher.Address, watcher.Id}
	if _, ok := set[k]; !ok {
		return false
	}
	delete(set, k)
	if len(set) == 0 {
		delete(s, watchee)
	}
	return true
}

func (p *peer) SendUserMessage(pid *actor.PID, item any) { p.send(pid, item, false, 0) }

// SendSystemMessage sends a system message to a remote actor. A Watch or
// Unwatch whose watcher was spawned before the Remote started names it at
// LocalAddress, which means the peer itself there: it travels, and is
// remembered, with this system's address instead, so that the watcher's
// Terminated comes back to it. A Terminated ends the peer's watch of a
// local actor.
func (p *peer) SendSystemMessage(pid *actor.PID, msg any) {
	var era uint32
	switch m := msg.(type) {
	case *actor.Watch:
		if w := m.GetWatcher(); w != nil && w.Address == actor.LocalAddress {
			m = &actor.Watch{Watcher: actor.NewPID(p.r.address, w.Id)}
			msg = m
		}
		era = p.addWatch(pid.Id, m.Watcher)
	case *actor.Unwatch:
		if w := m.GetWatcher(); w != nil && w.Address == actor.LocalAddress {
			m = &actor.Unwatch{Watcher: actor.NewPID(p.r.address, w.Id)}
			msg = m
		}
		p.removeWatch(pid.Id, m.Watcher)
		era = p.epoch.Load()
	case *actor.Terminated:
		if m.GetWho() != nil {
			era = p.unwatchedLocally(m.Who.Id, pid)
		}
	}
	p.send(pid, msg, true, era)
}

func (p *peer) Stop(pid *actor.PID) { p.SendSystemMessage(pid, &actor.Stop{}) }

// send queues item for the peer; era is a Watch's or Unwatch's epoch, or
// a Terminated's incarnation (see stale).
func (p *peer) send(pid *actor.PID, item any, system bool, era uint32) {
	// An unserializable message fails here, on the sender's goroutine.
	msg, _, _ := actor.Unwrap(item)
	ser, typeName, err := p.r.serializers.forMessage(msg)
	var ep *endpoint
	if err == nil {
		ep, err = p.endpoint()
	}
	if err != nil {
		p.undeliverable(pid, item, err)
		return
	}
	ep.enqueue(outbound{target: pid, item: item, system: system, era: era, ser: ser, typeName: typeName})
}

// undeliverable dead-letters item, which could not be sent to target. A
// Watch that was not sent is answered at once with Terminated
// (AddressTerminated), as watching what does not exist is locally: else
// its watcher would wait for an end nobody will report. It is answered if
// its watch is still in the set, once: a watcher that watched twice has
// one watch, and one the set lost (to an Unwatch, or to the end of the
// address, which told its watcher) has had its answer.
func (p *peer) undeliverable(target *actor.PID, item any, reason error) {
	p.r.sys.DeadLetter(target, item, reason)
	if w, ok := item.(*actor.Watch); ok && w.GetWatcher() != nil && p.removeWatch(target.Id, w.Watcher) {
		p.r.sys.SendSystemMessage(w.Watcher, &actor.Terminated{Who: target, Reason: actor.ReasonAddressTerminated})
	}
}

// endpoint returns the live endpoint, starting one if there is none.
func (p *peer) endpoint() (*endpoint, error) {
	if ep := p.ep.Load(); ep != nil {
		return ep, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if ep := p.ep.Load(); ep != nil {
		return ep, nil
	}
	ep, err := p.r.newEndpoint(p)
	if err != nil {
		return nil, err
	}
	p.ep.Store(ep)
	return ep, nil
}

// addWatch remembers a watcher of watchee and returns the epoch its Watch
// belongs to.
func (p *peer) addWatch(watchee string, watcher *actor.PID) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watches.add(watchee, watcher)
	return p.epoch.Load()
}

// removeWatch forgets one watcher of watchee (Unwatch, or Terminated
// delivered), and reports whether it was in the set.
func (p *peer) removeWatch(watchee string, watcher *actor.PID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.watches.remove(watchee, watcher)
}

// rewatches returns a Watch for every watch in the set, of the current
// epoch, for a reconnect to send before anything else: a Watch in a frame
// lost with the old connection is in the set, but the peer never
// registered it. The peer keeps one watch per watcher, so a Watch it has
// is harmless, and it answers one for an actor that has ended meanwhile
// with Terminated, which ends the watch once (see receiver.deliver).
func (p *peer) rewatches() []outbound {
	ser, typeName, err := p.r.serializers.forMessage(&actor.Watch{})
	if err != nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	era := p.epoch.Load()
	var recs []outbound
	for watchee, set := range p.watches {
		target := actor.NewPID(p.address, watchee)
		for _, w := range set {
			recs = append(recs, outbound{target: target, item: &actor.Watch{Watcher: w}, system: true, era: era, ser: ser, typeName: typeName})
		}
	}
	return recs
}

// watchedLocally notes that the peer's watcher watches a local actor.
func (p *peer) watchedLocally(watchee string, watcher *actor.PID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchedBy.add(watchee, watcher)
}

// unwatchedLocally forgets the peer's watcher of a local actor (its
// Unwatch, or the actor's end), and returns the peer's incarnation.
func (p *peer) unwatchedLocally(watchee string, watcher *actor.PID) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.watchedBy.remove(watchee, watcher)
	return p.incarnation.Load()
}

// sawMember notes the member id of the peer a connection reached. Another
// id than the last connection's means the peer restarted at the same
// address: the actors watched there are gone with the old process, so
// their watchers learn it as when the endpoint terminates, although
// messages flow on to the new process. The Watch and Unwatch messages
// still queued were for the old process, and are not sent. The old
// process's watchers of local actors are gone too: the actors forget them
// (an Unwatch each), and a Terminated still queued for one is not sent.
//
// Every stream calls it before it delivers the peer's messages, so that a
// Watch from the new process is never taken for the old one's: the
// Unwatches are queued before any message of the new process reaches the
// actors.
func (p *peer) sawMember(member string) {
	p.seen.Lock()
	defer p.seen.Unlock()
	p.mu.Lock()
	last := p.member
	p.member = member
	restarted := last != "" && last != member
	var watches, watchedBy watchSet
	if restarted {
		watches = p.forgetWatchesLocked()
		watchedBy = p.watchedBy
		p.watchedBy = nil
		p.incarnation.Add(1)
	}
	p.mu.Unlock()
	if !restarted {
		return
	}
	p.r.logger.Info("remote: peer restarted", "peer", p.address, "member", member, "previous", last)
	for watchee, set := range watchedBy {
		local := actor.NewPID(p.r.address, watchee)
		for _, w := range set {
			p.r.sys.SendSystemMessage(local, &actor.Unwatch{Watcher: w})
		}
	}
	p.terminated(watches)
	p.r.sys.EventStream().Publish(&PeerRestarted{Address: p.address, MemberID: member, Previous: last})
}

// PeerRestarted is published on the actor system's event stream when a
// connection to a peer reaches another process than the last one did
// (another MemberID at the same address). What the connection to the old
// process carried may be lost without a dead letter: requests written on
// it shortly before it died, and the answers the old process owed. A
// requester waiting for such an answer learns here that it will not come.
type PeerRestarted struct {
	// Address is the peer's address.
	Address string
	// MemberID is the new process's member ID; Previous is the old one's.
	MemberID, Previous string
}

// ConnectionLost is published on the actor system's event stream when an
// established connection to a peer breaks without a goodbye (a network
// failure, a keepalive timeout, a reset stream), and the endpoint goes on
// to reconnect. What the connection carried may be lost without a dead
// letter: frames gRPC had taken but not yet delivered, both ways, such as
// a request written on it, or the answer to one. A requester waiting for
// such an answer learns here that it may not come. A Watch lost so is
// sent again after the reconnect; other messages are not. Each side
// publishes it when its own endpoint finds the break: what the peer
// writes on the connection until the peer finds it too is lost as well,
// and nothing tells this side of that.
type ConnectionLost struct {
	// Address is the peer's address.
	Address string
	// Reason is why the connection ended: the stream's error as gRPC
	// reported it, or one matching ErrEndpointTerminated when the peer's
	// stream to us ended.
	Reason error
}

// addressTerminated tells every local watcher of an actor at this address
// that it is gone.
func (p *peer) addressTerminated() {
	p.mu.Lock()
	watches := p.forgetWatchesLocked()
	p.mu.Unlock()
	p.terminated(watches)
}

// forgetWatchesLocked empties the watch set, whose watchers the caller
// tells, and begins a new epoch: in the same step, so that a Watch is
// either told of here and not sent (its epoch has ended), or sent and
// not told of.
func (p *peer) forgetWatchesLocked() watchSet {
	watches := p.watches
	p.watches = nil
	p.epoch.Add(1)
	return watches
}

// stale reports whether rec is a Watch or Unwatch of an ended epoch, or a
// Terminated for a watcher of an earlier incarnation of the peer. The
// first's watcher was told of the end of the peer's actors when the epoch
// ended, and it is not sent, lest a process that restarted at the address
// get a watch nobody wants (or answer it with a second Terminated); the
// second's watcher is gone with the process, and nobody at the address
// watches the actor.
func (p *peer) stale(rec *outbound) bool {
	switch rec.item.(type) {
	case *actor.Watch, *actor.Unwatch:
		return rec.era != p.epoch.Load()
	case *actor.Terminated:
		return rec.era != p.incarnation.Load()
	}
	return false
}

// terminated sends Terminated (AddressTerminated) to the watchers of
// watches, forgotten by forgetWatchesLocked.
func (p *peer) terminated(watches watchSet) {
	for watchee, set := range watches {
		who := actor.NewPID(p.address, watchee)
		for _, w := range set {
			p.r.sys.SendSystemMessage(w, &actor.Terminated{Who: who, Reason: actor.ReasonAddressTerminated})
		}
	}
}

// endpoint is one lifetime of the connection to a peer: from the first
// message until it terminates for good. Its writer goroutine dials, shakes
// hands, writes batches, and reconnects with backoff after failures; it
// gives up after ReconnectTimeout without a connection.
type endpoint struct {
	r    *Remote
	peer *peer

	queue   mpsc.Queue[outbound] // bounded
	idle    atomic.Bool          // the writer waits for work
	wake    chan struct{}        // a token wakes the writer
	room    chan struct{}        // a token wakes a sender waiting for room
	waiters atomic.Int32         // senders waiting for room
	done    chan struct{}        // closed when terminated

	ctx    context.Context // cancelled to stop the writer at once
	cancel context.CancelFunc
	flush  atomic.Bool // on stop: send what is queued, then say goodbye

	stopOnce sync.Once
	reason   error // why it stopped; set before done is closed (see terminate)
}

// newEndpoint starts the endpoint's writer.
func (r *Remote) newEndpoint(p *peer) (*endpoint, error) {
	ctx, cancel := context.WithCancel(context.Background())
	ep := &endpoint{
		r:      r,
		peer:   p,
		wake:   make(chan struct{}, 1),
		room:   make(chan struct{}, 1),
		done:   make(chan struct{}),
		ctx:    ctx,
		cancel: cancel,
	}
	ep.queue.Bound(r.cfg.SendQueueSize)
	if !r.track(ep) {
		cancel()
		return nil, ErrShutdown
	}
	go ep.run()
	return ep, nil
}

// enqueue hands rec to the writer, waiting up to QueueFullTimeout for room
// in all (a sender woken for room that another sender took waits on, for
// what is left of it).
func (ep *endpoint) enqueue(rec outbound) {
	var deadline time.Time
	for {
		switch ep.queue.Offer(rec) {
		case mpsc.Accepted:
			if ep.idle.Load() && ep.idle.CompareAndSwap(true, false) {
				select {
				case ep.wake <- struct{}{}:
				default:
				}
			}
			return
		case mpsc.Closed:
			ep.reject(&rec, ep.stopReason())
			return
		}
		if deadline.IsZero() && ep.r.cfg.QueueFullTimeout >= 0 {
			deadline = time.Now().Add(ep.r.cfg.QueueFullTimeout)
		}
		if !ep.waitForRoom(deadline) {
			ep.reject(&rec, fmt.Errorf("%w: %d messages queued for %s", ErrQueueFull, ep.r.cfg.SendQueueSize, ep.peer.address))
			return
		}
	}
}

// waitForRoom waits until the writer frees room or the endpoint
// terminates (true), or deadline passes (false; a zero deadline has).
func (ep *endpoint) waitForRoom(deadline time.Time) bool {
	d := time.Until(deadline)
	if d <= 0 {
		return false
	}
	ep.waiters.Add(1)
	defer ep.waiters.Add(-1)
	// The writer may have freed room between our Offer and Add: look again
	// before sleeping, since it only signals waiters it can see.
	if ep.queue.Free() {
		return true
	}
	t, _ := timerPool.Get().(*time.Timer)
	if t == nil {
		t = time.NewTimer(d)
	} else {
		t.Reset(d)
	}
	defer func() {
		t.Stop()
		timerPool.Put(t)
	}()
	select {
	case <-ep.room:
		// Pass the wake-up on if other senders wait (we still count
		// ourselves): room was made for a batch, not for one message.
		if ep.waiters.Load() > 1 {
			ep.signalRoom()
		}
		return true
	case <-ep.done:
		return true // the next Offer reports Closed
	case <-t.C:
		return false
	}
}

func (ep *endpoint) signalRoom() {
	if ep.waiters.Load() > 0 {
		select {
		case ep.room <- struct{}{}:
		default:
		}
	}
}

// reject dead-letters a message the endpoint will not carry. A stale one
// is dropped as the writer drops it: a Watch's watcher has had its answer,
// and the watch set now belongs to the next epoch.
func (ep *endpoint) reject(rec *outbound, reason error) {
	if rec.system && ep.peer.stale(rec) {
		return
	}
	ep.peer.undeliverable(rec.target, rec.item, reason)
}

// stop ends the endpoint with reason. With flush, the writer first sends
// what is queued (until the Remote's shutdown deadline cancels it).
func (ep *endpoint) stop(reason error, flush bool) {
	ep.stopOnce.Do(func() {
		ep.reason = reason
		if flush {
			ep.flush.Store(true)
			select {
			case ep.wake <- struct{}{}:
			default:
			}
			return
		}
		ep.cancel()
	})
}

// stopReason returns why the endpoint terminated, to a sender its closed
// queue refused: terminate closes done, the reason set, before the queue.
func (ep *endpoint) stopReason() error {
	<-ep.done
	return ep.reason
}

// run is the writer goroutine.
func (ep *endpoint) run() {
	defer ep.r.untrack(ep)
	err := ep.connectLoop()
	ep.terminate(err)
}

// stopping reports whether the endpoint was stopped: cancelled, or asked
// to flush and say goodbye.
func (ep *endpoint) stopping() bool { return ep.ctx.Err() != nil || ep.flush.Load() }

// connectLoop connects and pumps until the endpoint must terminate, and
// returns why. A connection lost while the endpoint runs on is published
// (ConnectionLost) before it reconnects.
func (ep *endpoint) connectLoop() error {
	cfg := &ep.r.cfg
	backoff := cfg.ReconnectBackoff
	deadline := time.Now().Add(cfg.ReconnectTimeout)
	connected := false
	for {
		c, err := ep.connect()
		if err == nil {
			var rewatches []outbound
			if connected {
				cfg.Metrics.Reconnected(ep.peer.address)
				ep.r.logger.Info("remote: reconnected", "peer", ep.peer.address)
				rewatches = ep.peer.rewatches()
			}
			connected = true
			err = ep.pump(c, rewatches) // the stream told the peer of its member id (sawMember)
			c.close()
			if err == nil || isPermanent(err) {
				return err
			}
			ep.r.logger.Warn("remote: connection lost", "peer", ep.peer.address, "error", err)
			if ep.stopping() {
				return ep.reason
			}
			ep.r.sys.EventStream().Publish(&ConnectionLost{Address: ep.peer.address, Reason: err})
			backoff, deadline = cfg.ReconnectBackoff, time.Now().Add(cfg.ReconnectTimeout)
		} else if isPermanent(err) {
			return err
		}
		if ep.stopping() {
			return ep.reason
		}
		if !time.Now().Before(deadline) {
			return endpointTerminated(ep.peer.address, fmt.Sprintf("unreachable for %v: %v", cfg.ReconnectTimeout, err))
		}
		ep.r.logger.Debug("remote: retrying the connection", "peer", ep.peer.address, "after", backoff, "error", err)
		if !ep.sleep(backoff) {
			return ep.reason
		}
		backoff = min(2*backoff, cfg.MaxReconnectBackoff)
	}
}

// sleep waits d before the next connection attempt. It reports false if the
// endpoint is stopped meanwhile: cancelled, or asked to flush, which there
// is no connection for.
func (ep *endpoint) sleep(d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return true
		case <-ep.ctx.Done():
			return false
		case <-ep.wake:
			// Shutdown's wake-up, or a sender's: the writer finds its message
			// once connected anyway.
			if ep.flush.Load() {
				return false
			}
		}
	}
}

// permanentError marks failures not worth a reconnection attempt.
type permanentError struct{ error }

func (e permanentError) Unwrap() error { return e.error }

func isPermanent(err error) bool {
	var p permanentError
	return errors.As(err, &p)
}

// conn is one established stream the endpoint writes its batches on:
// one it dialed, or one the peer dialed to us (see inbound.link).
type conn struct {
	maxFrame, maxMsg int // the peer's limits for what we send
	// send writes a batch frame; goodbye says we are leaving, after a
	// flush.
	send    func(*frame) error
	goodbye func() error
	// ended is closed when the stream can carry no more, after which
	// endErr tells why: the peer's goodbye or the stream's failure.
	ended  <-chan struct{}
	endErr func() error
	// close lets go of the stream.
	close func()
}

// connect returns a stream to the peer: the one it opened to us if there
// is one to claim (sparing a connection, and reaching peers nobody can
// dial), else a stream we dial.
func (ep *endpoint) connect() (*conn, error) {
	if in := ep.r.claimInbound(ep.peer.address); in != nil {
		return in.link(ep.ctx), nil
	}
	return ep.dial()
}

// dial connects, opens the stream and shakes hands.
func (ep *endpoint) dial() (*conn, error) {
	cfg := &ep.r.cfg
	creds := insecure.NewCredentials()
	if cfg.ClientTLS != nil {
		creds = credentials.NewTLS(cfg.ClientTLS.Clone())
	}
	cc, err := grpc.NewClient("passthrough:///"+ep.peer.address,
		grpc.WithTransportCredentials(creds),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{
			Time: cfg.KeepaliveInterval, Timeout: cfg.KeepaliveTimeout, PermitWithoutStream: true,
		}),
		grpc.WithInitialWindowSize(int32(cfg.FlowControlWindow)),
		grpc.WithInitialConnWindowSize(int32(cfg.FlowControlWindow)),
		grpc.WithDefaultCallOptions(grpc.CallContentSubtype(codecName),
			grpc.MaxCallRecvMsgSize(cfg.MaxFrameSize), grpc.MaxCallSendMsgSize(cfg.MaxFrameSize)),
	)
	if err != nil {
		return nil, permanentError{endpointTerminated(ep.peer.address, err.Error())}
	}
	ctx, cancel := context.WithCancel(ep.ctx)
	// Connecting and the handshake are bounded; the stream then lives on.
	timer := time.AfterFunc(cfg.DialTimeout+cfg.HandshakeTimeout, cancel)
	fail := func(err error) (*conn, error) {
		timer.Stop()
		cancel()
		_ = cc.Close()
		return nil, err
	}
	stream, err := cc.NewStream(ctx, &wire.RemotingService_ServiceDesc.Streams[0], wire.RemotingService_Connect_FullMethodName)
	if err != nil {
		return fail(fmt.Errorf("connect to %s: %w", ep.peer.address, err))
	}
	hello := &wire.ConnectRequest{Frame: &wire.ConnectRequest_Hello{Hello: &wire.Hello{
		ProtocolVersion: protocolVersion, ClusterName: cfg.ClusterName, MemberId: cfg.MemberID, Address: ep.r.address,
		MaxFrameSize: uint32(cfg.MaxFrameSize), MaxMessageSize: uint32(cfg.MaxMessageSize),
	}}}
	if err := stream.SendMsg(hello); err != nil {
		return fail(fmt.Errorf("handshake with %s: %w", ep.peer.address, err))
	}
	var resp wire.ConnectResponse
	if err := stream.RecvMsg(&resp); err != nil {
		return fail(fmt.Errorf("handshake with %s: %w", ep.peer.address, err))
	}
	if d := resp.GetDisconnect(); d != nil {
		return fail(permanentError{disconnectError(ep.peer.address, d)})
	}
	w := resp.GetWelcome()
	if w == nil {
		return fail(permanentError{fmt.Errorf("%w: %s answered the handshake with %T", ErrProtocol, ep.peer.address, resp.GetFrame())})
	}
	if !timer.Stop() {
		return fail(fmt.Errorf("handshake with %s: timed out", ep.peer.address))
	}
	maxFrame := min(cfg.MaxFrameSize, int(w.GetMaxFrameSize()))
	maxMsg := min(cfg.MaxMessageSize, int(w.GetMaxMessageSize()))
	if maxMsg <= 0 || maxFrame <= maxMsg {
		return fail(permanentError{fmt.Errorf("%w: %s announced frame limit %d, message limit %d", ErrProtocol, ep.peer.address, w.GetMaxFrameSize(), w.GetMaxMessageSize())})
	}
	ep.peer.sawMember(w.GetMemberId()) // before reading its messages
	ended := make(chan struct{})
	var endErr error
	go func() {
		endErr = ep.read(stream)
		close(ended)
	}()
	return &conn{
		maxFrame: maxFrame, maxMsg: maxMsg,
		send: func(f *frame) error { return stream.SendMsg(f) },
		goodbye: func() error {
			bye := &wire.ConnectRequest{Frame: &wire.ConnectRequest_Disconnect{Disconnect: &wire.Disconnect{
				Reason: wire.DisconnectReason_DISCONNECT_REASON_SHUTDOWN, Message: "shutting down",
			}}}
			if err := stream.SendMsg(bye); err != nil {
				return err
			}
			return stream.CloseSend()
		},
		ended: ended, endErr: func() error { return endErr },
		close: func() {
			cancel()
			_ = cc.Close()
			<-ended
		},
	}, nil
}

// read reads the listener's frames after the handshake, delivering the
// batches it sends back, until the stream ends or the listener says
// goodbye.
func (ep *endpoint) read(stream grpc.ClientStream) error {
	bye, err := newReceiver(ep.r, ep.peer.address).receive(stream, wire.NewResponse)
	if bye != nil {
		return permanentError{disconnectError(ep.peer.address, bye)}
	}
	return err
}

// disconnectError turns a peer's Disconnect into an error.
func disconnectError(address string, d *wire.Disconnect) error {
	switch d.GetReason() {
	case wire.DisconnectReason_DISCONNECT_REASON_CLUSTER_MISMATCH:
		return fmt.Errorf("%w: %s refused us: %s", ErrClusterMismatch, address, d.GetMessage())
	case wire.DisconnectReason_DISCONNECT_REASON_ADDRESS_NOT_CERTIFIED:
		return fmt.Errorf("%w: %s refused us: %s", ErrAddressNotCertified, address, d.GetMessage())
	case wire.DisconnectReason_DISCONNECT_REASON_SHUTDOWN:
		return endpointTerminated(address, "shutting down")
	}
	return fmt.Errorf("%w: %s: %s", ErrProtocol, address, d.GetMessage())
}

// pump writes batches until the stream fails, the peer says goodbye, or the
// endpoint is stopped. A nil error means a flush completed. The records of
// first go out before anything queued.
func (ep *endpoint) pump(c *conn, first []outbound) error {
	cfg := &ep.r.cfg
	enc := wire.NewBatchEncoder()
	var recs []outbound // the frame's messages, kept until it is written
	var env wire.Envelope
	out := &frame{} // reused: gRPC is done with it when SendMsg returns
	// Stop adding to a frame once one more message might not fit.
	budget := max(c.maxFrame-c.maxMsg-frameMargin, 0)
	for {
		enc.Reset()
		clear(recs)
		recs = recs[:0]
		for enc.Count() < cfg.BatchSize && enc.Size() <= budget {
			var rec outbound
			if len(first) > 0 {
				rec, first = first[0], first[1:]
			} else if next, ok := ep.queue.Pop(); ok {
				rec = next
			} else {
				break
			}
			if rec.system && ep.peer.stale(&rec) {
				continue
			}
			if err := ep.encode(enc, &env, &rec, c.maxMsg); err != nil {
				ep.reject(&rec, err)
				continue
			}
			recs = append(recs, rec)
		}
		ep.signalRoom()
		if len(recs) > 0 {
			data := enc.Frame()
			out.data = data
			if err := c.send(out); err != nil {
				lost := endpointTerminated(ep.peer.address, "connection lost: "+err.Error())
				for i := range recs {
					ep.reject(&recs[i], lost)
				}
				return err
			}
			cfg.Metrics.BatchSent(ep.peer.address, len(recs), len(data))
			cfg.Metrics.QueueDepth(ep.peer.address, ep.queue.Len())
			continue
		}
		if ep.flush.Load() {
			return ep.goodbye(c)
		}
		// Nothing to send: wait for a sender's wake-up. Going idle races
		// with senders, who wake us only when they see us idle: look again
		// after saying so.
		ep.idle.Store(true)
		if ep.queue.Len() > 0 && ep.idle.CompareAndSwap(true, false) {
			continue
		}
		select {
		case <-ep.wake:
			ep.idle.Store(false)
		case <-c.ended:
			err := c.endErr()
			return err
		case <-ep.ctx.Done():
			return ep.reason
		}
	}
}

// encode adds rec to the batch.
func (ep *endpoint) encode(enc *wire.BatchEncoder, env *wire.Envelope, rec *outbound, maxMsg int) error {
	msg, sender, header := actor.Unwrap(rec.item)
	*env = wire.Envelope{TypeName: rec.typeName, SerializerID: rec.ser.ID(), TargetID: rec.target.Id, System: rec.system, Header: header}
	if sender != nil {
		env.Sender = wire.Sender{Address: ep.r.publicAddress(sender.Address), ID: sender.Id}
	}
	if err := enc.Add(env, rec.ser, msg, maxMsg); err != nil {
		if errors.Is(err, wire.ErrMessageTooLarge) {
			return fmt.Errorf("%w: %s to %s: %v", ErrMessageTooLarge, rec.typeName, ep.peer.address, err)
		}
		return fmt.Errorf("remote: cannot serialize %s: %w", rec.typeName, err)
	}
	return nil
}

// goodbye tells the peer we are leaving, after a flush, and waits
// until it has read everything: SendMsg only queues, and closing the
// connection earlier would discard frames not yet written.
func (ep *endpoint) goodbye(c *conn) error {
	if err := c.goodbye(); err != nil {
		return err
	}
	select {
	case <-c.ended: // the peer ended the stream after reading the goodbye
	case <-ep.ctx.Done(): // the shutdown deadline passed
	}
	return nil
}

// terminate ends the endpoint: no more messages are taken, those queued go
// to dead letters, and watchers of the peer's actors learn it is gone.
func (ep *endpoint) terminate(err error) {
	if err == nil {
		err = ep.reason
	}
	if err == nil {
		err = endpointTerminated(ep.peer.address, "")
	}
	ep.stopOnce.Do(func() {})
	// The reason first, then done, then the queue: whoever done wakes, and
	// every sender the closed queue refuses, finds the reason set.
	ep.reason = err
	close(ep.done)
	ep.queue.Close()
	ep.peer.ep.CompareAndSwap(ep, nil)
	ep.cancel()
	for !ep.queue.Drained() {
		if rec, ok := ep.queue.Pop(); ok {
			ep.reject(&rec, err)
		}
	}
	ep.r.cfg.Metrics.EndpointTerminated(ep.peer.address)
	if !errors.Is(err, ErrShutdown) {
		ep.r.logger.Warn("remote: endpoint terminated", "peer", ep.peer.address, "reason", err)
	}
	ep.r.sys.EventStream().Publish(&EndpointTerminated{Address: ep.peer.address, Reason: err})
	ep.peer.addressTerminated()
}

// EndpointTerminated is published on the actor system's event stream when
// the transport gives up on a peer: watchers of its actors then receive
// Terminated with reason AddressTerminated.
type EndpointTerminated struct {
	// Address is the peer's address, as in the PIDs of its actors.
	Address string
	// Reason is why the transport gave up; it matches one of this
	// package's errors with errors.Is (ErrEndpointTerminated,
	// ErrClusterMismatch, ErrProtocol or ErrShutdown), or is the reason
	// given to TerminateEndpoint.
	Reason error
}
