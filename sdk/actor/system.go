package actor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// System hosts actors: it spawns them, routes messages to them and stops
// them. Its methods are safe for concurrent use. A System runs no goroutine
// of its own: an actor's mailbox gets a goroutine only while it has
// messages.
type System struct {
	cfg         Config
	logger      *slog.Logger
	registry    *Registry
	events      *EventStream
	deadLetters *deadLetterProcess
	guardian    *guardian
	pool        *workerPool // runs actors whose props set no dispatcher
	started     time.Time
	dlSub       *Subscription

	shutdown     atomic.Bool
	topCount     atomic.Int64 // live top-level actors
	topDoneOnce  sync.Once
	topDone      chan struct{} // closed when the last top-level actor stops during shutdown
	shutdownOnce sync.Once
}

// NewSystem returns a running actor system. Zero fields of cfg take their
// defaults; invalid ones yield an error.
func NewSystem(cfg Config) (*System, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	s := &System{
		cfg:     cfg,
		logger:  cfg.Logger,
		events:  &EventStream{},
		started: time.Now(),
		topDone: make(chan struct{}),
	}
	s.registry = newRegistry(s)
	s.deadLetters = &deadLetterProcess{sys: s}
	s.guardian = &guardian{sys: s}
	s.pool = newWorkerPool(cfg.IdleWorkers)
	if cfg.DeadLetterLogBurst > 0 {
		l := &deadLetterLogger{logger: s.logger, interval: cfg.DeadLetterLogInterval, burst: cfg.DeadLetterLogBurst, now: time.Now}
		s.dlSub = Subscribe(s.events, l.handle)
	}
	return s, nil
}

// Logger returns the system's logger.
func (s *System) Logger() *slog.Logger { return s.logger }

// EventStream returns the system's event stream.
func (s *System) EventStream() *EventStream { return s.events }

// Registry returns the system's process registry.
func (s *System) Registry() *Registry { return s.registry }

// Address returns the system's address (LocalAddress unless remoted).
func (s *System) Address() string { return s.registry.Address() }

// Config returns the system's configuration, defaults filled in.
func (s *System) Config() Config { return s.cfg }

// Spawn starts a top-level actor with a generated name. It returns nil, and
// logs why, if the spawn fails (the system is shutting down, or a spawn
// middleware refused); messages to a nil PID go to dead letters.
func (s *System) Spawn(props *Props) *PID {
	pid, err := s.SpawnNamed(props, "")
	if err != nil {
		s.logger.Error("actor: spawn failed", "error", err)
		return nil
	}
	return pid
}

// SpawnNamed starts a top-level actor with the given name as its id, or a
// generated one if name is empty. It fails with ErrNameExists if the name
// is in use and ErrSystemShutdown once Shutdown has begun.
func (s *System) SpawnNamed(props *Props, name string) (*PID, error) {
	if name == "" {
		return freshID(s.registry.NextID, func(id string) (*PID, error) { return s.spawn(props, id, nil) })
	}
	return s.spawn(props, name, nil)
}

func (s *System) spawn(props *Props, id string, parent *actorContext) (*PID, error) {
	if props == nil {
		return nil, fmt.Errorf("actor: spawn %q: nil props", id)
	}
	var pc Context
	if parent != nil {
		pc = parent
	}
	if props.spawnChain != nil {
		return props.spawnChain(s, id, props, pc)
	}
	return spawnActor(s, id, props, pc)
}

// spawnActor is the default SpawnFunc, at the end of every spawn middleware
// chain.
func spawnActor(sys *System, id string, props *Props, parent Context) (pid *PID, err error) {
	if props.producer == nil {
		return nil, fmt.Errorf("actor: spawn %q: props have no producer", id)
	}
	c := &actorContext{props: props}
	c.handle.sys = sys
	if parent != nil {
		c.parent = parent.Self()
	} else {
		sys.topCount.Add(1)
		defer func() {
			if err != nil {
				sys.topLevelStopped()
			}
		}()
		if sys.shutdown.Load() {
			return nil, fmt.Errorf("%w: spawn %q", ErrSystemShutdown, id)
		}
	}
	var reason any
	if c.actor, reason = produce(props.producer); reason != nil {
		if reason == errNilActor {
			return nil, fmt.Errorf("actor: spawn %q: %w", id, errNilActor)
		}
		return nil, fmt.Errorf("actor: spawn %q: producer panicked: %v", id, reason)
	}
	c.mb.init(props.mailbox)
	c.handle.p = c
	if len(props.receiverMiddleware) > 0 {
		c.ext().receive = chain(props.receiverMiddleware, ReceiveFunc(func(Context) { c.receiveBehavior() }))
	}
	// Set up before anyone can reach the actor: Started is first in line,
	// and the mailbox counts as running, so a message sent between the
	// registration and the first run only queues.
	c.mb.system.Push(startedMsg)
	c.mb.status.Store(mailboxRunning)
	c.self = sys.registry.pidOf(id, &c.handle)
	if err = sys.registry.insert(c.self, &c.handle); err != nil {
		return nil, err
	}
	if parent == nil && sys.shutdown.Load() {
		// Shutdown began after the check above and may have missed us.
		sys.Stop(c.self)
	}
	c.dispatch()
	return c.self, nil
}

// errNilActor is the failure of a producer that returned nil.
var errNilActor = errors.New("producer returned nil")

// produce calls the producer. It fails, with a non-nil reason, if the
// producer panics (the recovered value) or returns nil (errNilActor).
func produce(p Producer) (a Actor, reason any) {
	defer func() {
		if r := recover(); r != nil {
			a, reason = nil, r
		}
	}()
	if a = p(); a == nil {
		return nil, errNilActor
	}
	return a, nil
}

// topLevelStopped records that a top-level actor is gone.
func (s *System) topLevelStopped() {
	if s.topCount.Add(-1) == 0 && s.shutdown.Load() {
		s.topDoneOnce.Do(func() { close(s.topDone) })
	}
}

// topLevel returns the live top-level actors.
func (s *System) topLevel() []*PID {
	var out []*PID
	s.registry.each(func(_ string, p Process) {
		if c, ok := p.(*actorContext); ok && c.parent == nil {
			out = append(out, c.self)
		}
	})
	return out
}

// Send delivers msg to pid without a sender. Send an *Envelope to attach a
// Header.
func (s *System) Send(pid *PID, msg any) { s.sendUser(pid, msg) }

// Request sends msg to pid and waits for the reply until ctx ends. A request
// to a PID that does not exist fails at once with ErrDeadLetter; when ctx
// ends first, the error wraps ctx's (errors.Is(err,
// context.DeadlineExceeded)).
func (s *System) Request(ctx context.Context, pid *PID, msg any) (any, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f := s.newFuture(-1)
	s.sendUser(pid, withSender(msg, f.pid))
	return f.Await(ctx)
}

// RequestFuture sends msg to pid and returns a future for the reply, which
// fails with ErrTimeout after timeout: Config.RequestTimeout if timeout is
// 0, never if it is negative (then end it with Await or Fail).
func (s *System) RequestFuture(pid *PID, msg any, timeout time.Duration) *Future {
	f := s.newFuture(timeout)
	s.sendUser(pid, withSender(msg, f.pid))
	return f
}

// Stop stops pid after the message it is processing. Its children stop
// first; messages still queued go to dead letters.
func (s *System) Stop(pid *PID) { s.sendSystem(pid, stopSys) }

// Poison stops pid once it has processed the messages sent before.
func (s *System) Poison(pid *PID) { s.sendUser(pid, poisonPill) }

var poisonPill = &PoisonPill{}

// StopAndWait stops pid and waits until it and its children are gone, or
// until ctx ends. Stopping a PID that does not exist succeeds at once.
func (s *System) StopAndWait(ctx context.Context, pid *PID) error {
	return s.stopAndWait(ctx, pid, false)
}

// PoisonAndWait poisons pid and waits until it has processed the messages
// sent before and stopped, or until ctx ends. If the pill cannot be
// delivered (a full OverflowDrop mailbox), the actor does not stop and
// PoisonAndWait fails at once with the DeadLetterError.
func (s *System) PoisonAndWait(ctx context.Context, pid *PID) error {
	return s.stopAndWait(ctx, pid, true)
}

func (s *System) stopAndWait(ctx context.Context, pid *PID, poison bool) error {
	if pid == nil {
		return ErrNilPID
	}
	f := s.newFuture(-1)
	s.sendSystem(pid, &Watch{Watcher: f.pid})
	if !poison {
		s.Stop(pid)
	} else {
		// The pill's sender hears if the pill cannot be delivered (a full
		// OverflowDrop mailbox): the actor then does not stop, and waiting
		// would be in vain.
		undelivered := s.newFuture(-1)
		defer undelivered.complete(nil, nil)
		s.sendUser(pid, &Envelope{Message: poisonPill, Sender: undelivered.pid})
		select {
		case <-undelivered.Done():
			if err := undelivered.err; err != nil && !gone(err) {
				f.Fail(err)
			}
		case <-f.Done():
		case <-ctx.Done():
		}
	}
	if _, err := f.Await(ctx); err != nil {
		s.sendSystem(pid, &Unwatch{Watcher: f.pid}) // do not leave it watching the dead future
		return err
	}
	return nil
}

// gone reports whether err is a dead letter because its target has stopped
// or never existed: a Terminated for it comes all the same.
func gone(err error) bool {
	var dl *DeadLetterError
	return errors.As(err, &dl) && (dl.Reason == nil || errors.Is(dl.Reason, ErrActorStopped) || errors.Is(dl.Reason, ErrDeadLetter))
}

// Shutdown stops every actor (top-level actors stop their children first)
// and returns once all are gone, or with ctx's error when ctx ends first.
// Pending futures then fail with ErrSystemShutdown, later spawns of
// top-level actors are refused, and the system's idle worker goroutines
// exit. Calling it again waits again. Do not call it from an actor's
// Receive: it would wait, until ctx ends, for that very actor to stop.
func (s *System) Shutdown(ctx context.Context) error {
	s.shutdownOnce.Do(func() {
		s.shutdown.Store(true)
		for _, pid := range s.topLevel() {
			s.Stop(pid)
		}
		if s.topCount.Load() == 0 {
			s.topDoneOnce.Do(func() { close(s.topDone) })
		}
	})
	select {
	case <-s.topDone:
	case <-ctx.Done():
		return fmt.Errorf("actor: shutdown with %d top-level actors still running: %w", s.topCount.Load(), context.Cause(ctx))
	}
	s.registry.each(func(_ string, p Process) {
		if f, ok := p.(*Future); ok {
			f.complete(nil, ErrSystemShutdown)
		}
	})
	if s.dlSub != nil {
		s.dlSub.Unsubscribe()
	}
	s.pool.close()
	return nil
}

// sendUser delivers a user message (possibly an *Envelope) to pid. A PID
// whose cached process is live is served without a lookup, and a local
// actor without an interface call.
func (s *System) sendUser(pid *PID, item any) {
	if pid == nil {
		s.deadLetter(nil, item, ErrNilPID)
		return
	}
	p, ok := pid.cached(s) // inlined, unlike resolve
	if !ok {
		p = s.registry.resolveSlow(pid)
	}
	if c, ok := p.(*actorContext); ok {
		c.postUser(item)
		return
	}
	p.SendUserMessage(pid, item)
}

// sendSystem delivers a system message to pid.
func (s *System) sendSystem(pid *PID, msg any) {
	if pid == nil || !hasPIDs(msg) {
		s.publishDeadLetter(pid, msg, ErrNilPID)
		return
	}
	s.registry.resolve(pid).SendSystemMessage(pid, msg)
}

// hasPIDs reports whether a system message carries the PID it must: a
// Watch or Unwatch without its watcher, or a Terminated without the actor
// that ended, would fail its target (it may come from the network).
func hasPIDs(msg any) bool {
	switch m := msg.(type) {
	case *Watch:
		return m.GetWatcher() != nil
	case *Unwatch:
		return m.GetWatcher() != nil
	case *Terminated:
		return m.GetWho() != nil
	}
	return true
}

// sendSystemEach delivers msg to each of pids.
func (s *System) sendSystemEach(pids []*PID, msg any) {
	for _, pid := range pids {
		s.sendSystem(pid, msg)
	}
}

// SendSystemMessage delivers a system message (Watch, Unwatch, Stop,
// Terminated) to pid. Transports use it to hand over system messages that
// arrive from the network.
func (s *System) SendSystemMessage(pid *PID, msg any) { s.sendSystem(pid, msg) }

// DeadLetter reports item as undeliverable to target, for reason: it is
// published as a DeadLetterEvent, and a requester gets a DeadLetterResponse
// so that it fails fast. Transports use it for messages they cannot deliver.
func (s *System) DeadLetter(target *PID, item any, reason error) {
	s.deadLetter(target, item, reason)
}

func (s *System) publishSupervision(child *PID, reason any, d Directive) {
	s.logger.Warn("actor: supervisor decision", "child", pidString(child), "reason", reason, "directive", d.String())
	s.events.Publish(&SupervisorEvent{Child: child, Reason: reason, Directive: d})
}
