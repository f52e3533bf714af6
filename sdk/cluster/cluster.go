package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster/internal/clusterpb"
	"github.com/troupehq/troupe/sdk/remote"
)

const (
	stateCreated int32 = iota
	stateRunning
	stateLeaving
	stateStopped
)

// Cluster makes an actor system a member (or client) of a cluster of
// systems that host grains: virtual actors addressed by ClusterIdentity,
// activated on their first message wherever the cluster decides.
type Cluster struct {
	cfg    Config
	sys    *actor.System
	remote *remote.Remote
	logger *slog.Logger
	kinds  map[string]*kindRuntime
	client bool

	self     Member
	members  *memberList
	routing  atomic.Pointer[routing]
	cache    *pidCache
	identity *actor.PID
	cachePID *actor.PID // the cache process
	state    atomic.Int32
	ready    chan struct{} // closed with the first topology that includes us
	readyOne sync.Once
	expelled sync.Once
	// expelling is the refused members being told to go (tellExpelled).
	expellingMu sync.Mutex
	expelling   map[string]bool

	// alive tells calls waiting on a member that it left: they then fail
	// over instead of hanging.
	aliveMu      sync.Mutex // serializes updates
	alive        atomic.Pointer[liveness]
	departCancel context.CancelCauseFunc // ends alive's departure
	// lostSub fails over the calls waiting on a peer that restarted at
	// its address, or whose connection broke (see lostAnswers).
	lostSub *actor.Subscription

	dlSub  *actor.Subscription
	ctx    context.Context // cancelled at shutdown, for background work
	cancel context.CancelFunc
	// workers is the background work (reroutes); workersMu and
	// workersEnded keep it from starting once the shutdown waits for it.
	workersMu    sync.Mutex
	workersEnded bool
	workers      sync.WaitGroup
}

// kindRuntime is a registered kind with its props ready to spawn.
type kindRuntime struct {
	Kind
	props *actor.Props
}

// routing is what callers need to reach owners, for one topology.
type routing struct {
	place  *placement
	routes map[string]*actor.PID // member ID → its identity actor
	// hashHex is the topology's hash as grain calls carry it.
	hashHex string
}

func newRouting(t Topology) *routing {
	rt := &routing{
		place:   newPlacement(t),
		routes:  make(map[string]*actor.PID, len(t.Members)),
		hashHex: formatHash(t.Hash),
	}
	for _, m := range t.Members {
		rt.routes[m.ID] = actor.NewPID(m.Address, identityName)
	}
	return rt
}

// New returns a cluster member for sys, reachable through r (which must be
// started before Start). Zero fields of cfg take their defaults; invalid
// ones yield an error.
func New(sys *actor.System, r *remote.Remote, cfg Config) (*Cluster, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if sys == nil || r == nil {
		return nil, fmt.Errorf("%w: New needs an actor system and its remote", ErrInvalidConfig)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c := &Cluster{
		cfg: cfg, sys: sys, remote: r, logger: sys.Logger().With("component", "cluster"),
		kinds: make(map[string]*kindRuntime), client: len(cfg.Kinds) == 0,
		members: newMemberList(cfg.MaxDepartedMembers), cache: newPIDCache(cfg.PIDCacheSize), ready: make(chan struct{}),
		expelling: make(map[string]bool),
		ctx:       ctx, cancel: cancel,
	}
	for _, k := range cfg.Kinds {
		props := k.Props
		if k.IdleTimeout > 0 {
			props = props.With(actor.WithReceiverMiddleware(passivation(k.IdleTimeout)))
		}
		c.kinds[k.Name] = &kindRuntime{Kind: k, props: props}
	}
	return c, nil
}

// passivation stops an activation after idle without a message.
func passivation(idle time.Duration) actor.ReceiverMiddleware {
	return func(next actor.ReceiveFunc) actor.ReceiveFunc {
		return func(c actor.Context) {
			switch c.Message().(type) {
			case *actor.Started:
				c.SetReceiveTimeout(idle)
			case *actor.ReceiveTimeout:
				c.Stop(c.Self())
				return
			}
			next(c)
		}
	}
}

// Start joins the cluster and returns once this member sees a topology
// that includes it (a client: any topology), or when ctx ends. After an
// error, Close releases what Start began.
func (c *Cluster) Start(ctx context.Context) error {
	if !c.state.CompareAndSwap(stateCreated, stateRunning) {
		return errors.New("cluster: already started")
	}
	address := c.remote.Address()
	if address == "" {
		return errors.New("cluster: start the remote before the cluster")
	}
	c.self = Member{ID: c.remote.Config().MemberID, Address: address}
	for name := range c.kinds {
		c.self.Kinds = append(c.self.Kinds, name)
	}
	cachePID, err := c.sys.Registry().Add(cacheName, cacheProcess{c})
	if err != nil {
		return fmt.Errorf("cluster: start the cache process: %w", err)
	}
	c.cachePID = cachePID
	if !c.client {
		pid, err := c.sys.SpawnNamed(actor.PropsFromProducer(c.newIdentityActor), identityName)
		if err != nil {
			return fmt.Errorf("cluster: start the identity actor: %w", err)
		}
		c.identity = pid
		c.dlSub = actor.Subscribe(c.sys.EventStream(), c.reroute)
	}
	c.lostSub = c.sys.EventStream().Subscribe(c.lostAnswers)
	if err := c.cfg.Membership.Join(ctx, c.self, c.client, c.onMembers); err != nil {
		return fmt.Errorf("cluster: join: %w", err)
	}
	select {
	case <-c.ready:
		c.logger.Info("cluster: joined", "member", c.self.ID, "address", address, "kinds", c.self.Kinds, "client", c.client)
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cluster: waiting for the first topology: %w", context.Cause(ctx))
	}
}

// onMembers receives every member set from the membership.
func (c *Cluster) onMembers(members []Member) {
	// A member listed again after it left is refused, here and on every
	// member that saw it leave; one that never did (it joined since) would
	// take it in, and the two would never agree on a topology. Tell it to
	// go: it closes and leaves the membership for good.
	for _, m := range c.members.refused(members) {
		if m.ID != c.self.ID {
			c.tellExpelled(m)
		}
	}
	topo, changed := c.members.update(members)
	if !changed {
		return
	}
	for _, m := range topo.Left {
		if m.ID == c.self.ID {
			c.expel("the membership dropped it")
		}
	}
	rt := newRouting(topo)
	c.routing.Store(rt)
	c.trackAlive(topo)
	if len(topo.Left) > 0 {
		gone := make(map[string]bool, len(topo.Left))
		for _, m := range topo.Left {
			gone[m.Address] = true
		}
		for _, m := range topo.Members {
			delete(gone, m.Address) // an address a new member already reuses
		}
		c.cache.evictAddresses(gone)
		for address := range gone {
			c.remote.TerminateEndpoint(address, fmt.Errorf("%w: %s left the cluster", remote.ErrEndpointTerminated, address))
		}
	}
	if c.identity != nil {
		c.sys.Send(c.identity, &topologyChanged{rt: rt})
	}
	c.logger.Info("cluster: topology", "epoch", topo.Epoch, "members", len(topo.Members), "joined", ids(topo.Joined), "left", ids(topo.Left))
	c.sys.EventStream().Publish(topo)
	if _, in := topo.Member(c.self.ID); in || c.client {
		c.readyOne.Do(func() { close(c.ready) })
	}
}

type memberContext struct {
	id     string
	ctx    context.Context
	cancel context.CancelCauseFunc
}

// liveness is a snapshot of the members' contexts.
type liveness struct {
	members map[string]memberContext // by address
	// departure ends when any member leaves after the snapshot.
	departure context.Context
}

// trackAlive keeps a context per member, cancelled when it leaves, and one
// cancelled when any member leaves.
func (c *Cluster) trackAlive(topo Topology) {
	c.aliveMu.Lock()
	defer c.aliveMu.Unlock()
	alive := make(map[string]memberContext, len(topo.Members))
	old := c.alive.Load()
	if old != nil {
		maps.Copy(alive, old.members)
	}
	departure := c.ctx
	if old != nil {
		departure = old.departure
	}
	if old == nil || len(topo.Left) > 0 {
		if c.departCancel != nil {
			c.departCancel(fmt.Errorf("%w: %s", ErrMemberLeft, strings.Join(ids(topo.Left), ", ")))
		}
		departure, c.departCancel = context.WithCancelCause(c.ctx)
	}
	for _, m := range topo.Left {
		if mc, ok := alive[m.Address]; ok && mc.id == m.ID {
			mc.cancel(fmt.Errorf("%w: %s (%s)", ErrMemberLeft, m.ID, m.Address))
			delete(alive, m.Address)
		}
	}
	for _, m := range topo.Members {
		if mc, ok := alive[m.Address]; !ok || mc.id != m.ID {
			if ok {
				mc.cancel(fmt.Errorf("%w: %s (%s)", ErrMemberLeft, mc.id, m.Address))
			}
			ctx, cancel := context.WithCancelCause(c.ctx)
			alive[m.Address] = memberContext{id: m.ID, ctx: ctx, cancel: cancel}
		}
	}
	c.alive.Store(&liveness{members: alive, departure: departure})
}

// lostAnswers fails over the calls waiting for an answer through the
// address of a peer that restarted there (remote.PeerRestarted: a new
// process, another member ID), or whose connection broke without a
// goodbye (remote.ConnectionLost): their request, or the answer owed, may
// have been lost with the connection, and the membership may never say
// that a member left, as it already dropped the old process or lists the
// new one at the same address, or as the member still runs. The calls
// waiting on the member at that address, and those through owners (which
// any member may answer), fail with ErrMemberLeft and are retried, which
// may run a request the member did get a second time. The identity actor
// completes its handover there again (see identityActor.completeAgain).
func (c *Cluster) lostAnswers(event any) {
	var address string
	var cause error
	switch e := event.(type) {
	case *remote.PeerRestarted:
		address = e.Address
		cause = fmt.Errorf("%w: %s restarted (%s, then %s)", ErrMemberLeft, e.Address, e.Previous, e.MemberID)
	case *remote.ConnectionLost:
		address = e.Address
		cause = fmt.Errorf("%w: the connection to %s was lost: %v", ErrMemberLeft, e.Address, e.Reason)
	default:
		return
	}
	c.aliveMu.Lock()
	defer c.aliveMu.Unlock()
	old := c.alive.Load()
	if old == nil {
		return
	}
	alive := maps.Clone(old.members)
	if mc, ok := alive[address]; ok {
		mc.cancel(cause)
		ctx, cancel := context.WithCancelCause(c.ctx)
		alive[address] = memberContext{id: mc.id, ctx: ctx, cancel: cancel}
	}
	c.departCancel(cause)
	var departure context.Context
	departure, c.departCancel = context.WithCancelCause(c.ctx)
	c.alive.Store(&liveness{members: alive, departure: departure})
	if c.identity != nil {
		c.sys.Send(c.identity, connectionLost{address: address})
	}
}

// isMember reports whether a member of the current topology has address.
func (c *Cluster) isMember(address string) bool {
	alive := c.alive.Load()
	if alive == nil {
		return false
	}
	_, ok := alive.members[address]
	return ok
}

// request sends a request to pid and waits for the answer within ctx, or
// until the member at pid's address leaves (ErrMemberLeft): an answer lost
// with a member that died would otherwise be waited for until ctx ends. A
// pid at an address that is no member is not asked at all (ErrMemberLeft
// too): its member left, and an answer it sends while it shuts down may
// never come, or it joined and we have not seen it yet; the caller asks
// again after a backoff.
func (c *Cluster) request(ctx context.Context, pid *actor.PID, msg any) (any, error) {
	alive := c.alive.Load()
	if pid.Address == c.self.Address || alive == nil {
		return c.sys.Request(ctx, pid, msg)
	}
	mc, ok := alive.members[pid.Address]
	if !ok {
		return nil, fmt.Errorf("%w: no member at %s", ErrMemberLeft, pid.Address)
	}
	return c.requestWatching(ctx, pid, msg, mc.ctx)
}

// requestWatching sends a request to pid and waits for the answer within
// ctx, or until watch ends (failing with its cause).
func (c *Cluster) requestWatching(ctx context.Context, pid *actor.PID, msg any, watch context.Context) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := c.sys.RequestFuture(pid, msg, -1)
	select {
	case <-f.Done():
	case <-watch.Done():
		f.Fail(context.Cause(watch)) // unless the answer came first
	case <-ctx.Done():
		return f.Await(ctx)
	}
	return f.Result()
}

func ids(ms []Member) []string {
	out := make([]string, len(ms))
	for i, m := range ms {
		out[i] = m.ID
	}
	return out
}

// Topology returns the current topology: the one calls go by from the
// moment Topology returns it (the member list takes a change in before the
// cluster routes by it, and a caller that waited for a topology must not
// find its calls going by the one before).
func (c *Cluster) Topology() Topology {
	if rt := c.routing.Load(); rt != nil {
		return rt.place.topo
	}
	return Topology{}
}

// Self returns this member.
func (c *Cluster) Self() Member { return c.self }

// CallOption tunes one grain call.
type CallOption func(*callOptions)

type callOptions struct {
	backoff, maxBackoff time.Duration
}

// WithRetryBackoff overrides Config.RetryBackoff and MaxRetryBackoff for
// one call. Both must be positive and first must not exceed maxBackoff:
// otherwise the call fails at once with an error matching
// ErrInvalidConfig.
func WithRetryBackoff(first, maxBackoff time.Duration) CallOption {
	return func(o *callOptions) { o.backoff, o.maxBackoff = first, maxBackoff }
}

// Request sends msg to the grain id and returns its answer, activating the
// grain if needed. Transport and ownership failures are retried with
// exponential backoff until ctx ends; an answer that is a *GrainError is
// returned as the error, without retry. A request retried because a member
// died may have reached the grain before: requests that change state
// should be idempotent where members can fail. Hosts never reroute a
// request (see Send): its caller learns the activation is gone and
// retries.
func (c *Cluster) Request(ctx context.Context, id ClusterIdentity, msg any, opts ...CallOption) (any, error) {
	start := time.Now()
	res, err := c.call(ctx, id, msg, opts)
	c.cfg.Metrics.GrainCall(id.Kind, time.Since(start), err)
	return res, err
}

// Send delivers msg to the grain id without waiting for an answer: it
// finds the activation as Get does (retried until ctx ends), then sends to
// it. Delivery is at most once. A message that reaches an activation after
// it passivated (this member's cache was stale) is rerouted by its host to
// the grain's current activation, within Config.PlacementTimeout, unless
// the host is shutting down itself: then it goes to dead letters. A message
// no serializer accepts fails with an error matching remote.ErrUnknownType
// when the activation is on another member, as it does in Request.
func (c *Cluster) Send(ctx context.Context, id ClusterIdentity, msg any, opts ...CallOption) error {
	pid, err := c.Get(ctx, id, opts...)
	if err != nil {
		return err
	}
	if pid.Address != c.self.Address && pid.Address != actor.LocalAddress {
		if err := c.remote.Serializers().Check(msg); err != nil {
			return err
		}
	}
	c.sys.Send(pid, msg)
	return nil
}

// Get returns the grain's activation, activating it if needed.
func (c *Cluster) Get(ctx context.Context, id ClusterIdentity, opts ...CallOption) (*actor.PID, error) {
	return c.get(ctx, id, opts, nil)
}

// get is Get for a caller that found the activation gone (nil if not).
func (c *Cluster) get(ctx context.Context, id ClusterIdentity, opts []CallOption, gone *actor.PID) (*actor.PID, error) {
	var pid *actor.PID
	err := c.retry(ctx, id, opts, func() error {
		var err error
		pid, err = c.activation(ctx, id, gone)
		return err
	})
	return pid, err
}

// call makes a request to a grain: straight to its activation if the
// cache knows it, through its owner otherwise. After an activation turned
// out gone, the owner is asked for the activation first, naming the gone
// one: its table may still hold it (the host's notice went to another
// owner, or has not arrived).
func (c *Cluster) call(ctx context.Context, id ClusterIdentity, msg any, opts []CallOption) (any, error) {
	var res any
	var gone *actor.PID
	err := c.retry(ctx, id, opts, func() error {
		var pid *actor.PID
		var ok bool
		var err error
		if gone != nil {
			// The cache may hold the gone one too (its owner located it).
			if pid, err = c.activation(ctx, id, gone); err != nil {
				return err
			}
		} else if pid, ok = c.cached(id); !ok {
			res, err = c.callThroughOwner(ctx, id, msg)
			gone = goneActivation(id, err)
			return err
		}
		res, err = c.request(ctx, pid, msg)
		if errors.Is(err, actor.ErrDeadLetter) || errors.Is(err, ErrMemberLeft) {
			c.cache.evict(id, pid) // the activation is gone
		}
		gone = goneActivation(id, err)
		return err
	})
	if err != nil {
		return nil, err
	}
	if ge, ok := res.(*GrainError); ok {
		return nil, ge
	}
	return res, nil
}

// callThroughOwner sends a request to a grain through its owner, which
// delivers it to the activation (see grainCall): one hop less than asking
// the owner first.
func (c *Cluster) callThroughOwner(ctx context.Context, id ClusterIdentity, msg any) (any, error) {
	rt, owner, err := c.owner(id)
	if err != nil {
		return nil, err
	}
	// The answer comes from the activation's host, which may be any
	// member: the call fails over when any member leaves.
	watch := c.ctx
	if live := c.alive.Load(); live != nil {
		watch = live.departure
	}
	res, err := c.requestWatching(ctx, rt.routes[owner], grainCall(id, rt.hashHex, msg), watch)
	if err != nil {
		return nil, err
	}
	if resp, ok := res.(*clusterpb.ActivationResponse); ok {
		_, err := activationResult(owner, id, resp)
		if err == nil {
			err = fmt.Errorf("%w: owner %s answered a grain call with an activation", ErrOwnership, owner)
		}
		return nil, err
	}
	return res, nil
}

// retry runs attempt until it succeeds, fails for good, ctx ends, or the
// cluster stops.
func (c *Cluster) retry(ctx context.Context, id ClusterIdentity, opts []CallOption, attempt func() error) error {
	o, err := c.callOptions(opts)
	if err != nil {
		return fmt.Errorf("cluster: %v: %w", id, err)
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	var last error
	for backoff := o.backoff; ; backoff = min(2*backoff, o.maxBackoff) {
		if s := c.state.Load(); s == stateCreated || s == stateStopped {
			if last == nil {
				return ErrNotStarted
			}
			return fmt.Errorf("cluster: %v: %w (last error: %v)", id, ErrNotStarted, last)
		}
		err := attempt()
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("cluster: %v: %w (last error: %v)", id, context.Cause(ctx), err)
		}
		if !retryable(err) {
			return fmt.Errorf("cluster: %v: %w", id, err)
		}
		last = err
		c.cfg.Metrics.Retry(id.Kind)
		if t == nil {
			t = time.NewTimer(backoff)
		} else {
			t.Reset(backoff)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return fmt.Errorf("cluster: %v: %w (last error: %v)", id, context.Cause(ctx), err)
		}
	}
}

// callOptions applies opts to the configured defaults (which New
// validated), and validates the result.
func (c *Cluster) callOptions(opts []CallOption) (callOptions, error) {
	o := callOptions{backoff: c.cfg.RetryBackoff, maxBackoff: c.cfg.MaxRetryBackoff}
	if len(opts) == 0 {
		return o, nil // without escaping to the heap
	}
	set := o
	for _, opt := range opts {
		opt(&set)
	}
	if err := checkBackoff("WithRetryBackoff's first", "maxBackoff", set.backoff, set.maxBackoff); err != nil {
		return o, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return set, nil
}

// retryable: ownership and transport failures are worth another attempt,
// except those of a message no transport can carry.
func retryable(err error) bool {
	if errors.Is(err, remote.ErrUnknownType) || errors.Is(err, remote.ErrMessageTooLarge) {
		return false
	}
	return errors.Is(err, ErrOwnership) || errors.Is(err, ErrNoHost) || errors.Is(err, ErrNotStarted) ||
		errors.Is(err, ErrMemberLeft) || errors.Is(err, actor.ErrDeadLetter)
}

// goneActivation returns the activation of id that err says does not
// exist (a request to it was dead-lettered with no such process), or nil.
func goneActivation(id ClusterIdentity, err error) *actor.PID {
	if err == nil {
		return nil // before dl, which escapes: no allocation on success
	}
	var dl *actor.DeadLetterError
	if !errors.As(err, &dl) || !errors.Is(dl.Reason, actor.ErrDeadLetter) {
		return nil
	}
	if of, ok := IdentityOf(dl.Target); !ok || of != id {
		return nil
	}
	return dl.Target
}

// cached returns id's activation if the cache knows it.
func (c *Cluster) cached(id ClusterIdentity) (*actor.PID, bool) {
	pid, ok := c.cache.get(id)
	c.cfg.Metrics.CacheLookup(id.Kind, ok)
	return pid, ok
}

// remember caches id's activation, unless its member has left: an owner's
// answer can arrive after its member's entries were evicted, and a Send to
// an activation cached there would be lost, as every later one. onMembers
// updates the members before it evicts, so the cache's check is enough.
func (c *Cluster) remember(id ClusterIdentity, pid *actor.PID) {
	c.cache.put(id, pid, c.hosts)
}

// hosts reports whether address may host activations: this member, or a
// member of the current topology.
func (c *Cluster) hosts(address string) bool {
	return address == c.self.Address || address == actor.LocalAddress || c.isMember(address)
}

// owner returns the current routing and id's owner in it.
func (c *Cluster) owner(id ClusterIdentity) (*routing, string, error) {
	rt := c.routing.Load()
	if rt == nil {
		return nil, "", ErrNotStarted
	}
	owner, ok := rt.place.owner(id)
	if !ok {
		return nil, "", fmt.Errorf("%w: %q", ErrNoHost, id.Kind)
	}
	return rt, owner, nil
}

// activation returns where id's activation lives: from the cache, or from
// its owner. gone, if not nil, is an activation of id found gone, which
// the owner must not answer with.
func (c *Cluster) activation(ctx context.Context, id ClusterIdentity, gone *actor.PID) (*actor.PID, error) {
	if pid, ok := c.cached(id); ok && !pid.Equal(gone) {
		return pid, nil
	}
	rt, owner, err := c.owner(id)
	if err != nil {
		return nil, err
	}
	req := &clusterpb.ActivationRequest{Identity: wireIdentity(id), TopologyHash: rt.place.topo.Hash, Gone: gone}
	res, err := c.request(ctx, rt.routes[owner], req)
	if err != nil {
		return nil, err
	}
	resp, ok := res.(*clusterpb.ActivationResponse)
	if !ok {
		return nil, fmt.Errorf("%w: owner %s answered %T", ErrOwnership, owner, res)
	}
	pid, err := activationResult(owner, id, resp)
	if err == nil {
		c.remember(id, pid)
	}
	return pid, err
}

// activationResult turns an owner's answer into the activation or a
// matchable error.
func activationResult(owner string, id ClusterIdentity, resp *clusterpb.ActivationResponse) (*actor.PID, error) {
	switch resp.GetStatus() {
	case clusterpb.ActivationStatus_ACTIVATION_STATUS_OK:
		if resp.GetPid() == nil {
			break
		}
		return resp.GetPid(), nil
	case clusterpb.ActivationStatus_ACTIVATION_STATUS_UNKNOWN_KIND:
		return nil, fmt.Errorf("%w: %q (says owner %s)", ErrNoHost, id.Kind, owner)
	case clusterpb.ActivationStatus_ACTIVATION_STATUS_FAILED:
		return nil, fmt.Errorf("%w: %s", ErrActivationFailed, resp.GetError())
	}
	return nil, fmt.Errorf("%w: owner %s answered %v", ErrOwnership, owner, resp.GetStatus())
}

// reroute re-delivers a fire-and-forget message that reached an activation
// of this member after it stopped (a caller's cache was stale): grains
// always exist, so it goes to the grain's current activation. Requests are
// not rerouted: their callers got a dead letter and retry.
func (c *Cluster) reroute(e *actor.DeadLetterEvent) {
	if e.Sender != nil || e.PID == nil || (e.PID.Address != c.self.Address && e.PID.Address != actor.LocalAddress) {
		return
	}
	id, ok := IdentityOf(e.PID)
	if !ok || c.state.Load() == stateStopped {
		return
	}
	switch e.Message.(type) {
	case remote.UndecodedMessage, *actor.PoisonPill:
		return // a poison pill is for that activation only
	}
	var msg any = e.Message
	if e.Header != nil {
		msg = &actor.Envelope{Message: e.Message, Header: e.Header}
	}
	gone := e.PID
	switch {
	case errors.Is(e.Reason, actor.ErrDeadLetter):
	case errors.Is(e.Reason, actor.ErrActorStopped):
		gone = nil // stopping, not gone yet
	default:
		// Alive, but it did not take the message (its bounded mailbox was
		// full): re-sending would undo the mailbox's policy, and spin
		// while the grain is busy.
		return
	}
	c.goWorker(func() {
		ctx, cancel := context.WithTimeout(c.ctx, c.cfg.PlacementTimeout)
		defer cancel()
		pid, err := c.get(ctx, id, nil, gone)
		if err != nil {
			c.logger.Warn("cluster: could not re-deliver a message to a passivated grain", "identity", id, "error", err)
			return
		}
		c.sys.Send(pid, msg)
	})
}

// repoison sends a poison pill again, a little later, to each of hosted
// whose bounded mailbox was full and dropped it (the OverflowDrop policy),
// until ctx ends: Shutdown waits for them to passivate. The returned
// function stops it.
func (c *Cluster) repoison(ctx context.Context, hosted []*actor.PID) func() {
	ids := make(map[string]bool, len(hosted))
	for _, pid := range hosted {
		ids[pid.Id] = true
	}
	sub := actor.Subscribe(c.sys.EventStream(), func(e *actor.DeadLetterEvent) {
		if _, poison := e.Message.(*actor.PoisonPill); !poison || !errors.Is(e.Reason, actor.ErrMailboxFull) ||
			e.PID == nil || !ids[e.PID.Id] || ctx.Err() != nil {
			return
		}
		pid := e.PID
		time.AfterFunc(c.cfg.RetryBackoff, func() {
			if ctx.Err() == nil {
				c.sys.Poison(pid)
			}
		})
	})
	return sub.Unsubscribe
}

// goWorker runs f in the background unless the shutdown is already
// waiting for background work to end.
func (c *Cluster) goWorker(f func()) {
	c.workersMu.Lock()
	defer c.workersMu.Unlock()
	if !c.workersEnded {
		c.workers.Go(f)
	}
}

// endWorkers waits for the background work, and starts no more.
func (c *Cluster) endWorkers() {
	c.workersMu.Lock()
	c.workersEnded = true
	c.workersMu.Unlock()
	c.workers.Wait()
}

// Shutdown leaves the cluster gracefully within ctx: it deregisters from
// the membership (the other members take over ownership), stops taking
// activations, passivates the activations this member hosts (their
// Terminate hooks run; messages already queued are processed), flushes the
// remote's endpoints and shuts the remote down. Requests in flight to this
// member are answered or fail over to other members by retry. The actor
// system keeps running.
func (c *Cluster) Shutdown(ctx context.Context) error {
	if !c.state.CompareAndSwap(stateRunning, stateLeaving) {
		return nil
	}
	var errs []error
	if err := c.cfg.Membership.Leave(ctx); err != nil {
		errs = append(errs, fmt.Errorf("leave: %w", err))
	}
	if c.identity != nil {
		res, err := c.sys.Request(ctx, c.identity, &leaving{})
		if err != nil {
			errs = append(errs, fmt.Errorf("stop taking activations: %w", err))
		}
		hosted, _ := res.([]*actor.PID)
		stopRepoison := c.repoison(ctx, hosted)
		var wg sync.WaitGroup
		for _, pid := range hosted {
			wg.Go(func() {
				if err := c.sys.PoisonAndWait(ctx, pid); err != nil {
					c.logger.Warn("cluster: passivation cut short", "grain", pid.Id, "error", err)
				}
			})
		}
		wg.Wait()
		stopRepoison()
		if err := c.sys.StopAndWait(ctx, c.identity); err != nil {
			errs = append(errs, fmt.Errorf("stop the identity actor: %w", err))
		}
	}
	if err := c.remote.Shutdown(ctx); err != nil {
		errs = append(errs, err)
	}
	c.release()
	c.cancel()
	c.endWorkers()
	c.state.Store(stateStopped)
	c.logger.Info("cluster: left", "member", c.self.ID)
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster: shutdown: %w", err)
	}
	return nil
}

// Close stops the cluster at once, without the graceful phases: it stops
// taking membership updates (deregistering within Config.LeaveTimeout) and
// closes the remote (no flush, no goodbye).
// The other members learn it is gone from the membership's failure
// detection. For tests and fatal errors; use Shutdown to leave.
func (c *Cluster) Close() {
	if s := c.state.Swap(stateStopped); s == stateStopped || s == stateCreated {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), c.cfg.LeaveTimeout)
	err := c.cfg.Membership.Leave(ctx)
	cancel()
	if err != nil {
		c.logger.Warn("cluster: close: leave the membership", "timeout", c.cfg.LeaveTimeout, "error", err)
	}
	c.remote.Close()
	if c.identity != nil {
		c.sys.Stop(c.identity)
	}
	c.release()
	c.cancel()
	c.endWorkers()
}

// tellExpelled tells a member listed again after it left to go, until it
// answers, the membership no longer lists it, or the cluster stops: the
// first attempts can meet the endpoint still closing since it left. One
// teller per member at a time.
func (c *Cluster) tellExpelled(m Member) {
	c.expellingMu.Lock()
	defer c.expellingMu.Unlock()
	if c.expelling[m.ID] {
		return
	}
	c.expelling[m.ID] = true
	c.goWorker(func() {
		defer func() {
			c.expellingMu.Lock()
			delete(c.expelling, m.ID)
			c.expellingMu.Unlock()
		}()
		pid := actor.NewPID(m.Address, identityName)
		for backoff := c.cfg.RetryBackoff; ; backoff = min(2*backoff, c.cfg.MaxRetryBackoff) {
			ctx, cancel := context.WithTimeout(c.ctx, c.cfg.PlacementTimeout)
			_, err := c.sys.Request(ctx, pid, &clusterpb.Expelled{MemberId: m.ID})
			cancel()
			if err == nil || !c.members.listed(m.ID) {
				return
			}
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-c.ctx.Done():
				t.Stop()
				return
			}
		}
	})
}

// expel closes a member the cluster counts as gone, once: the others have
// started its activations again, so it must not host them any more. It
// publishes Expelled first, for the process to restart under a new ID.
func (c *Cluster) expel(reason string) {
	if c.client || c.state.Load() != stateRunning {
		return
	}
	c.expelled.Do(func() {
		c.logger.Error("cluster: this member was expelled; closing it (join again under a new member ID)", "member", c.self.ID, "reason", reason)
		c.sys.EventStream().Publish(Expelled{Member: c.self, Reason: reason})
		go c.Close() // not on the caller's goroutine: Close waits for the membership's
	})
}

// release undoes the registrations Start made with the actor system.
func (c *Cluster) release() {
	if c.dlSub != nil {
		c.dlSub.Unsubscribe()
	}
	if c.lostSub != nil {
		c.lostSub.Unsubscribe()
	}
	if c.cachePID != nil {
		c.sys.Registry().Remove(c.cachePID)
	}
}
