package actor

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// Actor processes messages one at a time; Receive is never called
// concurrently for one actor, so its state needs no locks.
type Actor interface {
	// Receive handles c.Message(), one message at a time, on the actor's
	// own goroutine of the moment.
	Receive(c Context)
}

// ReceiveFunc is a function that handles a message; it is an Actor.
type ReceiveFunc func(c Context)

// Receive calls f(c).
func (f ReceiveFunc) Receive(c Context) { f(c) }

// Producer creates an actor instance: at spawn and at every restart. If it
// panics or returns nil, a spawn fails; a restart fails like a Receive that
// panicked, for the supervisor to decide (see Supervision in the package
// doc: the actor then has no instance to resume).
type Producer func() Actor

// Context is an actor's view of the current message and of the runtime.
// It is valid only inside Receive (and continuations run by ReenterAfter),
// on the actor's own goroutine.
type Context interface {
	// System returns the actor system.
	System() *System
	// Self returns this actor's PID.
	Self() *PID
	// Parent returns the parent's PID, nil for a top-level actor.
	Parent() *PID
	// Logger returns the system's logger with this actor's PID attached.
	Logger() *slog.Logger

	// Message returns the message being processed.
	Message() any
	// Sender returns the sender of the message, nil if it was sent with Send.
	Sender() *PID
	// Header returns the message's header, nil if it has none.
	Header() Header

	// Send delivers msg to pid, without a sender. Send an *Envelope to
	// attach a Header.
	Send(pid *PID, msg any)
	// Request delivers msg to pid with this actor as the sender: the reply
	// arrives in this actor's mailbox like any message.
	Request(pid *PID, msg any)
	// RequestFuture delivers msg to pid and returns a future for the reply.
	// The future fails with ErrTimeout after timeout: the system's
	// RequestTimeout if timeout is 0, never if it is negative (then end it
	// with Await or Fail).
	RequestFuture(pid *PID, msg any, timeout time.Duration) *Future
	// Respond sends msg to the sender of the current message (to dead
	// letters if there is none).
	Respond(msg any)
	// Forward sends the current message, with its sender and header, to pid.
	Forward(pid *PID)
	// ReenterAfter runs cont on this actor's goroutine once f completes,
	// with the context's message and sender restored to those current when
	// ReenterAfter was called. The actor keeps processing other messages
	// meanwhile; cont never runs if the actor stops first. A restart does
	// not cancel it (as in protoactor-go): cont is a closure of the instance
	// that set it up, and may run before the fresh instance's Started, so
	// it should touch only what it captured and the Context.
	ReenterAfter(f *Future, cont func(result any, err error))

	// Spawn starts a child actor with a generated name. It returns nil, and
	// logs why, if the spawn fails (the system is shutting down, or a spawn
	// middleware refused); messages to a nil PID go to dead letters.
	Spawn(props *Props) *PID
	// SpawnNamed starts a child actor; its id is this actor's id, "/" and
	// name, or a generated name if name is empty. It fails with
	// ErrNameExists if the name is in use, and with ErrActorStopped while
	// this actor stops or restarts (from Restarting on, until the fresh
	// instance's Started).
	SpawnNamed(props *Props, name string) (*PID, error)
	// Children returns the PIDs of the live children.
	Children() []*PID

	// Stop stops pid after the message it is processing; messages still
	// queued go to dead letters.
	Stop(pid *PID)
	// Poison stops pid once it has processed the messages sent before.
	Poison(pid *PID)
	// Watch asks for a *Terminated message when pid stops.
	Watch(pid *PID)
	// Unwatch cancels Watch; no Terminated for pid arrives afterwards.
	Unwatch(pid *PID)

	// SetReceiveTimeout asks for a *ReceiveTimeout message whenever no
	// message arrived for d (messages implementing
	// NotInfluenceReceiveTimeout do not count). d <= 0 cancels. The receive
	// timeout belongs to the instance that set it: a restart cancels it, and
	// the fresh instance has none until it sets its own (in its Started,
	// say). Calls from Restarting until the fresh instance's Started, and
	// once the actor stops, are ignored.
	SetReceiveTimeout(d time.Duration)
	// CancelReceiveTimeout stops receive timeouts.
	CancelReceiveTimeout()
	// ReceiveTimeout returns the current receive timeout, 0 if none.
	ReceiveTimeout() time.Duration

	// Become replaces the actor's behaviour: r handles the next messages.
	Become(r ReceiveFunc)
	// BecomeStacked pushes r as the behaviour; UnbecomeStacked pops it.
	BecomeStacked(r ReceiveFunc)
	// UnbecomeStacked returns to the behaviour below the current one.
	UnbecomeStacked()

	// Stash sets the current message aside; UnstashAll delivers stashed
	// messages again, before anything else in the mailbox.
	Stash()
	// UnstashAll re-delivers every stashed message, oldest first.
	UnstashAll()
}

const (
	stateAlive int32 = iota
	stateRestarting
	stateStopping
	stateStopped
)

// actorContext is an actor's process, mailbox and context in one
// allocation. Everything but the mailbox's producer side and the handle is
// touched only on the actor's goroutine.
type actorContext struct {
	mb        mailbox
	state     int32
	suspended bool // a failed actor awaiting its supervisor: user messages wait
	handle    procHandle
	props     *Props
	self      *PID
	parent    *PID
	actor     Actor
	current   any     // the mailbox item being processed
	x         *extras // rarely used state, allocated on first use
}

// extras holds state most actors never need.
type extras struct {
	receive   ReceiveFunc // the receiver middleware chain
	children  pidSet
	watchers  pidSet
	watching  pidSet
	failing   *PID          // the child whose failure the strategy is deciding on
	escalated pidSet        // children whose failure was escalated: resumed with us
	held      []*Terminated // of watched non-children, come while restarting: for the fresh instance
	behaviors []ReceiveFunc
	stash     []any
	unstashed []any
	stats     *RestartStatistics
	timeout   *receiveTimeout
	logger    *slog.Logger
}

func (c *actorContext) ext() *extras {
	if c.x == nil {
		c.x = &extras{}
	}
	return c.x
}

// Process implementation: the producer side, safe from any goroutine.

func (c *actorContext) SendUserMessage(_ *PID, item any) { c.postUser(item) }

// postUser enqueues a user message and schedules the mailbox if it is idle.
func (c *actorContext) postUser(item any) {
	m := &c.mb
	if m.bounded == nil {
		m.user.Push(item)
	} else if !m.pushBounded(item) {
		c.rejectUser(item)
		return
	}
	if m.status.Load() == mailboxIdle {
		c.schedule()
	}
}

// rejectUser dead-letters a message a bounded mailbox did not take.
func (c *actorContext) rejectUser(item any) {
	reason := ErrMailboxFull
	if c.mb.bounded.closed.Load() {
		reason = ErrActorStopped
	}
	c.handle.sys.deadLetter(c.self, item, reason)
}

func (c *actorContext) SendSystemMessage(_ *PID, msg any) {
	c.mb.system.Push(msg)
	c.schedule()
}

func (c *actorContext) Stop(pid *PID) { c.handle.sys.Stop(pid) }

// Context implementation.

func (c *actorContext) System() *System { return c.handle.sys }
func (c *actorContext) Self() *PID      { return c.self }
func (c *actorContext) Parent() *PID    { return c.parent }

func (c *actorContext) Logger() *slog.Logger {
	x := c.ext()
	if x.logger == nil {
		x.logger = c.handle.sys.logger.With("pid", c.self.Id)
	}
	return x.logger
}

func (c *actorContext) Message() any {
	return messageOf(c.current)
}

func (c *actorContext) Sender() *PID {
	if e, ok := c.current.(*Envelope); ok && e != nil {
		return e.Sender
	}
	return nil
}

func (c *actorContext) Header() Header {
	if e, ok := c.current.(*Envelope); ok && e != nil {
		return e.Header
	}
	return nil
}

func (c *actorContext) Send(pid *PID, msg any) { c.send(pid, msg) }

func (c *actorContext) Request(pid *PID, msg any) { c.send(pid, withSender(msg, c.self)) }

func (c *actorContext) RequestFuture(pid *PID, msg any, timeout time.Duration) *Future {
	f := c.handle.sys.newFuture(timeout)
	c.send(pid, withSender(msg, f.pid))
	return f
}

func (c *actorContext) Respond(msg any) {
	sender := c.Sender()
	if sender == nil {
		c.handle.sys.deadLetter(nil, msg, ErrNilPID)
		return
	}
	c.send(sender, msg)
}

func (c *actorContext) Forward(pid *PID) {
	if c.current != nil {
		c.send(pid, c.current)
	}
}

// send passes item through the sender middleware, if any.
func (c *actorContext) send(pid *PID, item any) {
	if chain := c.props.senderChain; chain != nil {
		env, ok := item.(*Envelope)
		if !ok {
			env = &Envelope{Message: item}
		}
		chain(c, pid, env)
		return
	}
	c.handle.sys.sendUser(pid, item)
}

func (c *actorContext) ReenterAfter(f *Future, cont func(result any, err error)) {
	item := c.current
	self := c.self
	sys := c.handle.sys
	f.onComplete(func(result any, err error) {
		sys.sendSystem(self, &continuation{item: item, fn: func() { cont(result, err) }})
	})
}

func (c *actorContext) Spawn(props *Props) *PID {
	pid, err := c.SpawnNamed(props, "")
	if err != nil {
		c.Logger().Error("actor: spawn failed", "error", err)
		return nil
	}
	return pid
}

func (c *actorContext) SpawnNamed(props *Props, name string) (*PID, error) {
	if name == "" {
		return freshID(c.handle.sys.registry.NextID, func(id string) (*PID, error) { return c.SpawnNamed(props, id) })
	}
	if c.state != stateAlive {
		// It would outlive us, or hold a restart up for ever: our children
		// have been told to stop, and the stop or restart waits for them all.
		return nil, fmt.Errorf("%w: %s cannot spawn %q while stopping or restarting", ErrActorStopped, c.self.Id, name)
	}
	pid, err := c.handle.sys.spawn(props, c.self.Id+"/"+name, c)
	if err != nil {
		return nil, err
	}
	c.ext().children.add(pid)
	return pid, nil
}

func (c *actorContext) Children() []*PID {
	if c.x == nil {
		return nil
	}
	return c.x.children.values()
}

func (c *actorContext) Poison(pid *PID) { c.handle.sys.Poison(pid) }

func (c *actorContext) Watch(pid *PID) {
	if pid != nil { // a nil PID is a dead letter, as sendSystem reports
		c.ext().watching.add(pid)
	}
	c.handle.sys.sendSystem(pid, &Watch{Watcher: c.self})
}

func (c *actorContext) Unwatch(pid *PID) {
	if c.x != nil && pid != nil {
		c.x.watching.remove(pid)
	}
	c.handle.sys.sendSystem(pid, &Unwatch{Watcher: c.self})
}

func (c *actorContext) Become(r ReceiveFunc) {
	x := c.ext()
	x.behaviors = append(x.behaviors[:0], r)
}

func (c *actorContext) BecomeStacked(r ReceiveFunc) {
	x := c.ext()
	x.behaviors = append(x.behaviors, r)
}

func (c *actorContext) UnbecomeStacked() {
	if c.x != nil && len(c.x.behaviors) > 0 {
		c.x.behaviors[len(c.x.behaviors)-1] = nil
		c.x.behaviors = c.x.behaviors[:len(c.x.behaviors)-1]
	}
}

func (c *actorContext) Stash() {
	if c.current != nil {
		x := c.ext()
		x.stash = append(x.stash, c.current)
	}
}

func (c *actorContext) UnstashAll() {
	if c.x == nil || len(c.x.stash) == 0 {
		return
	}
	// Stashed messages go before anything unstashed earlier and not yet
	// processed, and before the mailbox.
	c.x.unstashed = append(c.x.stash, c.x.unstashed...)
	c.x.stash = nil
}

// Message processing: on the actor's goroutine.

// invokeUser processes one user message. The common case (a plain message
// to a live actor without middleware, behaviours or receive timeout) goes
// straight to Receive.
func (c *actorContext) invokeUser(item any) {
	if c.x == nil && c.state == stateAlive {
		switch item.(type) {
		case *Envelope, *PoisonPill:
		default:
			// current is left set after Receive returns: clearing it per
			// message costs more than holding the last message until the
			// next one.
			c.current = item
			c.actor.Receive(c)
			return
		}
	}
	c.invokeUserSlow(item)
}

func (c *actorContext) invokeUserSlow(item any) {
	if c.state >= stateStopping {
		c.handle.sys.deadLetter(c.self, item, ErrActorStopped)
		return
	}
	msg := messageOf(item)
	if _, ok := msg.(*PoisonPill); ok {
		c.handleStop()
		return
	}
	if c.x != nil && c.x.timeout != nil {
		if _, ok := msg.(NotInfluenceReceiveTimeout); !ok {
			c.x.timeout.touch(c.handle.sys)
		}
	}
	if msg == receiveTimeoutMsg && !c.receiveTimeoutDue() {
		return // queued by the timer, then cancelled or made stale by a message
	}
	c.current = item
	c.invokeReceive()
}

// invokeReceive runs the current message through the receiver middleware to
// the current behaviour.
func (c *actorContext) invokeReceive() {
	if c.x != nil && c.x.receive != nil {
		c.x.receive(c)
		return
	}
	c.receiveBehavior()
}

func (c *actorContext) receiveBehavior() {
	if c.x != nil && len(c.x.behaviors) > 0 {
		c.x.behaviors[len(c.x.behaviors)-1](c)
		return
	}
	c.actor.Receive(c)
}

// invokeLifecycle delivers a lifecycle or system-originated message to
// Receive.
func (c *actorContext) invokeLifecycle(msg any) {
	prev := c.current
	c.current = msg
	c.invokeReceive()
	c.current = prev
}

// invokeFinal delivers a message of the stopping or restarting sequence. A
// panic there is logged and does not interrupt the sequence: the actor is
// on its way out either way.
func (c *actorContext) invokeFinal(msg any) {
	defer func() {
		if r := recover(); r != nil {
			c.handle.sys.logger.Error("actor: panic while stopping", "pid", c.self.Id, "message", typeName(msg), "panic", r)
		}
	}()
	c.invokeLifecycle(msg)
}

// invokeSystem dispatches a system message. It runs at the bottom of every
// mailbox goroutine's stack, which starts small: handlers that need large
// frames (map iteration) are kept out of line so that the common paths do
// not make the stack grow.
func (c *actorContext) invokeSystem(msg any) {
	c.current = nil
	switch m := msg.(type) {
	case *Started:
		c.invokeLifecycle(m)
	case *continuation:
		c.runContinuation(m)
	case *Watch:
		c.handleWatch(m.Watcher)
	case *Unwatch:
		c.handleUnwatch(m.Watcher)
	case *Stop:
		c.handleStop()
	case *Terminated:
		c.handleTerminated(m)
	case *failure:
		c.handleFailure(m)
	case *restartMsg:
		c.handleRestart()
	case *resumeMsg:
		c.handleResume()
	default:
		c.unknownSystemMessage(msg)
	}
}

//go:noinline
func (c *actorContext) runContinuation(m *continuation) {
	if c.state >= stateStopping { // it has had its Stopping: cont must not run
		return
	}
	prev := c.current
	c.current = m.item
	m.fn()
	c.current = prev
}

// handleResume resumes the actor and the children whose failures it
// escalated: they wait, suspended, for its supervisor's decision.
//
//go:noinline
func (c *actorContext) handleResume() {
	if c.state == stateRestarting {
		// No fresh instance yet, so nothing to resume: the restart goes on,
		// and tries the producer again if it failed.
		c.tryFinish()
		return
	}
	c.suspended = false
	if c.x != nil && len(c.x.escalated) > 0 {
		c.handle.sys.sendSystemEach(c.x.escalated.values(), resumeSys)
		c.x.escalated = nil
	}
}

//go:noinline
func (c *actorContext) handleUnwatch(watcher *PID) {
	if c.x != nil {
		c.x.watchers.remove(watcher)
	}
}

//go:noinline
func (c *actorContext) unknownSystemMessage(msg any) {
	c.handle.sys.logger.Warn("actor: unknown system message", "pid", c.self.Id, "message", typeName(msg))
}

//go:noinline
func (c *actorContext) handleWatch(watcher *PID) {
	if c.state == stateStopped {
		c.handle.sys.sendSystem(watcher, &Terminated{Who: c.self, Reason: ReasonStopped})
		return
	}
	c.ext().watchers.add(watcher)
}

//go:noinline
func (c *actorContext) handleTerminated(t *Terminated) {
	if c.x != nil {
		child := c.x.children.remove(t.Who)
		if !child && c.state == stateRestarting && c.x.watching.has(t.Who) {
			// The old instance has had its Restarting: the fresh one gets it
			// after its Started (restart queues it again), unless it unwatches
			// first. A child's Terminated stays with the old instance: the
			// restart stopped that child, which the fresh one never knew.
			c.x.held = append(c.x.held, t)
			return
		}
		if c.x.watching.remove(t.Who) {
			c.invokeLifecycle(t)
		}
	}
	c.tryFinish()
}

// handleStop begins stopping: Stopping, stop the children, and once they are
// all gone, Stopped.
//
//go:noinline
func (c *actorContext) handleStop() {
	if c.state >= stateStopping {
		return
	}
	c.state = stateStopping
	if c.x != nil {
		c.CancelReceiveTimeout()
	}
	c.invokeFinal(stoppingMsg)
	if c.x != nil && len(c.x.children) > 0 {
		c.stopChildren()
		return // tryFinish runs as each child's Terminated arrives
	}
	c.tryFinish()
}

//go:noinline
func (c *actorContext) handleRestart() {
	if c.state >= stateStopping {
		return
	}
	// An actor already restarting (its producer failed, or an all-for-one
	// sibling restarted again) has given the old instance its Restarting.
	if c.state == stateAlive {
		c.state = stateRestarting
		// User messages wait for the fresh instance, also when the restart
		// is not this actor's failure (an all-for-one sibling) and must first
		// wait for the children to stop; restart resumes the mailbox.
		c.suspended = true
		if c.x != nil {
			c.CancelReceiveTimeout() // the old instance's; one it queued is dropped as stale
		}
		c.invokeFinal(restartingMsg)
	}
	c.stopChildren()
	c.tryFinish()
}

//go:noinline
func (c *actorContext) stopChildren() {
	if c.x != nil {
		for _, child := range c.x.children {
			c.handle.sys.Stop(child)
		}
	}
}

// tryFinish completes a stop or restart once no children are left.
func (c *actorContext) tryFinish() {
	if c.x != nil && len(c.x.children) > 0 {
		return
	}
	switch c.state {
	case stateStopping:
		c.finalizeStop()
	case stateRestarting:
		c.restart()
	}
}

func (c *actorContext) restart() {
	a, reason := produce(c.props.producer)
	if reason != nil {
		c.failRestart(reason)
		return
	}
	c.actor = a
	if c.x != nil {
		clear(c.x.behaviors)
		c.x.behaviors = c.x.behaviors[:0]
	}
	c.state = stateAlive
	c.suspended = false
	if c.x != nil {
		c.x.escalated = nil // they were stopped with the other children
		c.requeueHeld()
	}
	c.invokeLifecycle(startedMsg)
}

// requeueHeld queues again the Terminated messages held during a restart:
// they are handled after the fresh instance's Started, before any user
// message, as system messages are.
func (c *actorContext) requeueHeld() {
	for _, t := range c.x.held {
		c.mb.system.Push(t)
	}
	c.x.held = nil
}

func (c *actorContext) finalizeStop() {
	c.handle.sys.registry.Remove(c.self)
	c.invokeFinal(stoppedMsg)
	c.state = stateStopped
	c.mb.close()
	c.suspended = false // let queued messages drain to dead letters
	term := &Terminated{Who: c.self, Reason: ReasonStopped}
	if c.x != nil {
		c.releaseExtras(term)
	}
	if c.parent != nil {
		c.handle.sys.sendSystem(c.parent, term)
	} else {
		c.handle.sys.topLevelStopped()
	}
	c.actor = nil
}

// releaseExtras tells the watchers, dead-letters stashed messages and drops
// what the stopped actor held, while its PID may live on.
//
//go:noinline
func (c *actorContext) releaseExtras(term *Terminated) {
	for _, w := range c.x.watchers {
		c.handle.sys.sendSystem(w, term)
	}
	for _, item := range c.x.unstashed {
		c.handle.sys.deadLetter(c.self, item, ErrActorStopped)
	}
	for _, item := range c.x.stash {
		c.handle.sys.deadLetter(c.self, item, ErrActorStopped)
	}
	c.x = nil
}

// Supervision.

// restartStats returns the actor's failure record, handed to its
// supervisor with each failure.
func (c *actorContext) restartStats() *RestartStatistics {
	x := c.ext()
	if x.stats == nil {
		x.stats = &RestartStatistics{}
	}
	return x.stats
}

// escalateFailure suspends the actor and hands the failure to its
// supervisor.
func (c *actorContext) escalateFailure(reason any, item any) {
	c.reportFailure(reason, messageOf(item), false)
}

// reportFailure suspends the actor and hands the failure to its
// supervisor; noInstance says the producer failed on restart. The failure
// carries noInstance, for the supervisor to set in stats on its own
// goroutine: this actor may restart again while its supervisor decides.
func (c *actorContext) reportFailure(reason, msg any, noInstance bool) {
	if c.state >= stateStopping {
		c.handle.sys.logger.Error("actor: panic while stopping", "pid", c.self.Id, "panic", reason)
		return
	}
	c.suspended = true
	stats := c.restartStats()
	if c.parent == nil {
		stats.noInstance = noInstance // the guardian decides on this goroutine
		c.handle.sys.guardian.handleFailure(c.self, stats, reason, msg)
		return
	}
	c.handle.sys.sendSystem(c.parent, &failure{child: c.self, reason: reason, message: msg, stats: stats, noInstance: noInstance})
}

// failRestart hands the failure of the producer to the supervisor. The
// actor stays restarting, suspended, without an instance to resume: a
// Resume restarts it (handleResume), and the strategies that count
// restarts count it as one.
//
//go:noinline
func (c *actorContext) failRestart(reason any) {
	c.handle.sys.logger.Error("actor: producer failed on restart", "pid", c.self.Id, "reason", reason)
	c.reportFailure(reason, nil, true)
}

//go:noinline
func (c *actorContext) handleFailure(f *failure) {
	strategy := c.props.supervisor
	if strategy == nil {
		strategy = c.handle.sys.cfg.SupervisorStrategy
	}
	x := c.ext()
	x.failing = f.child
	defer func() { x.failing = nil }()
	f.stats.noInstance = f.noInstance
	strategy.HandleFailure(c.handle.sys, c, f.child, f.stats, f.reason, f.message)
}

// Supervisor implementation, used by the strategy in handleFailure.

func (c *actorContext) EscalateFailure(reason any, message any) {
	if c.x != nil && c.x.failing != nil {
		c.x.escalated.add(c.x.failing)
	}
	c.escalateFailure(reason, message)
}

func (c *actorContext) RestartChildren(pids ...*PID) { c.handle.sys.sendSystemEach(pids, restartSys) }

func (c *actorContext) StopChildren(pids ...*PID) { c.handle.sys.sendSystemEach(pids, stopSys) }

func (c *actorContext) ResumeChildren(pids ...*PID) { c.handle.sys.sendSystemEach(pids, resumeSys) }

// Receive timeout.

// receiveTimeout fires ReceiveTimeout after d without activity. Activity
// only records a timestamp; the timer, when it fires, re-arms itself for
// the remaining time, so a busy actor does not reset a timer per message.
type receiveTimeout struct {
	d     atomic.Int64 // nanoseconds; 0 when cancelled
	last  atomic.Int64 // monotonic nanoseconds of the last activity
	mu    sync.Mutex
	timer *time.Timer
}

func (rt *receiveTimeout) touch(sys *System) { rt.last.Store(monotonic(sys.started)) }

func (c *actorContext) SetReceiveTimeout(d time.Duration) {
	if d <= 0 {
		c.CancelReceiveTimeout()
		return
	}
	if c.state != stateAlive { // restarting or stopping: no instance to time out
		return
	}
	x := c.ext()
	rt := x.timeout
	if rt == nil {
		rt = &receiveTimeout{}
		x.timeout = rt
	}
	rt.touch(c.handle.sys)
	rt.d.Store(int64(d))
	rt.mu.Lock()
	defer rt.mu.Unlock()
	if rt.timer == nil {
		sys, self := c.handle.sys, c.self
		rt.timer = time.AfterFunc(d, func() { rt.fire(sys, self) })
	} else {
		rt.timer.Reset(d)
	}
}

// fire runs on the timer's goroutine.
func (rt *receiveTimeout) fire(sys *System, self *PID) {
	rt.mu.Lock()
	defer rt.mu.Unlock()
	d := rt.d.Load()
	if d <= 0 {
		return
	}
	if idle := monotonic(sys.started) - rt.last.Load(); idle < d {
		rt.timer.Reset(time.Duration(d - idle))
		return
	}
	sys.sendUser(self, receiveTimeoutMsg)
	rt.timer.Reset(time.Duration(d))
}

// receiveTimeoutDue reports whether a ReceiveTimeout the timer queued is
// still due: the timeout is set and no message arrived for its duration.
func (c *actorContext) receiveTimeoutDue() bool {
	if c.x == nil || c.x.timeout == nil {
		return false
	}
	rt := c.x.timeout
	d := rt.d.Load()
	return d > 0 && monotonic(c.handle.sys.started)-rt.last.Load() >= d
}

func (c *actorContext) CancelReceiveTimeout() {
	if c.x == nil || c.x.timeout == nil {
		return
	}
	rt := c.x.timeout
	rt.d.Store(0)
	rt.mu.Lock()
	if rt.timer != nil {
		rt.timer.Stop()
	}
	rt.mu.Unlock()
}

func (c *actorContext) ReceiveTimeout() time.Duration {
	if c.x == nil || c.x.timeout == nil {
		return 0
	}
	return time.Duration(c.x.timeout.d.Load())
}
