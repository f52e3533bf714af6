package actor

import (
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/troupehq/troupe/sdk/internal/mpsc"
)

// OverflowPolicy says what a bounded mailbox does with a message when full.
type OverflowPolicy int

const (
	// OverflowBlock makes the sender wait until there is room or the actor
	// stops (the message then goes to dead letters). Never use it for an
	// actor that sends to itself or in a cycle: a full mailbox deadlocks.
	OverflowBlock OverflowPolicy = iota
	// OverflowDrop sends the message to dead letters with ErrMailboxFull; a
	// requester gets a DeadLetterResponse at once.
	OverflowDrop
)

// MailboxConfig configures an actor's mailbox.
type MailboxConfig struct {
	// Capacity bounds the number of queued user messages. 0 (the default)
	// means unbounded. A bounded mailbox is rounded up to a power of two (at
	// least 2) and allocated in full when the actor spawns; an unbounded one allocates as
	// messages arrive and releases its buffer when idle. System messages are
	// never bounded.
	Capacity int
	// Policy applies when a bounded mailbox is full. Default OverflowBlock.
	Policy OverflowPolicy
}

const (
	mailboxIdle int32 = iota
	mailboxRunning
)

// mailbox holds an actor's queues and runs it on its dispatcher while there
// is work. System messages are always served first; user messages wait
// while the mailbox is suspended (a failed actor awaiting its supervisor).
type mailbox struct {
	status atomic.Int32
	// waiters counts senders blocked on a full bounded mailbox; it lives
	// here, not in boundedState, because the consumer reads it per message.
	waiters atomic.Int32
	system  mpsc.Locked
	user    mpsc.Queue[any]
	bounded *boundedState // non-nil for a bounded mailbox
}

// boundedState is what a bounded mailbox needs besides its queue: the
// overflow policy and the senders blocked under OverflowBlock.
type boundedState struct {
	policy OverflowPolicy
	closed atomic.Bool
	mu     sync.Mutex
	cond   sync.Cond
}

func (m *mailbox) init(cfg MailboxConfig) {
	if cfg.Capacity > 0 {
		m.user.Bound(cfg.Capacity)
		b := &boundedState{policy: cfg.Policy}
		b.cond.L = &b.mu
		m.bounded = b
	}
}

// wake lets one blocked sender retry after the consumer freed a cell.
func (m *mailbox) wake() {
	b := m.bounded
	b.mu.Lock()
	b.cond.Signal()
	b.mu.Unlock()
}

// pushBounded enqueues item in a bounded mailbox, waiting for room under
// OverflowBlock. It reports false if the item was not queued (full under
// OverflowDrop, or the actor stopped); the caller dead-letters it.
func (m *mailbox) pushBounded(item any) bool {
	return m.user.TryPush(item) || m.pushBoundedFull(item)
}

func (m *mailbox) pushBoundedFull(item any) bool {
	b := m.bounded
	if b.policy == OverflowDrop {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for !b.closed.Load() {
		if m.user.TryPush(item) {
			return true
		}
		b.cond.Wait()
	}
	return false
}

// close wakes blocked senders of a stopped actor; their messages go to
// dead letters.
func (m *mailbox) close() {
	if b := m.bounded; b != nil {
		b.mu.Lock()
		b.closed.Store(true)
		b.cond.Broadcast()
		b.mu.Unlock()
	}
}

// schedule starts a run of the mailbox unless one is in progress. A producer
// calls it after every push that finds the mailbox idle; the run loop
// re-checks the queues after going idle, so a message is never stranded.
func (c *actorContext) schedule() {
	if c.mb.status.CompareAndSwap(mailboxIdle, mailboxRunning) {
		c.dispatch()
	}
}

// dispatch hands a run of the mailbox, which the caller has marked
// running, to the dispatcher.
func (c *actorContext) dispatch() {
	if d := c.props.dispatcher; d != nil {
		d.Schedule(c.runMailbox)
	} else {
		c.handle.sys.pool.schedule(c)
	}
}

// throughput is the number of messages processed between yields.
func (c *actorContext) throughput() int {
	if d := c.props.dispatcher; d != nil {
		return d.Throughput()
	}
	return c.handle.sys.cfg.Throughput
}

// runMailbox processes messages until both queues are empty (or only user
// messages remain while suspended). A panic in the actor is recovered inside
// processMailbox and handed to its supervisor; the loop carries on.
//
// Going idle races with producers, who push and then schedule a run only if
// the mailbox is idle. So the loop marks where it stopped reading, goes
// idle, and then asks the queues (with atomic reads only: another run may
// own them by now) whether anything arrived after the mark. If so, it tries
// to become the runner again; if that fails, the producer's run has it.
func (c *actorContext) runMailbox() {
	m := &c.mb
	throughput := c.throughput()
	for {
		if c.processMailbox(throughput) == 0 {
			// We came back for a message a producer has claimed but not yet
			// published: let it run rather than spin.
			runtime.Gosched()
		}
		m.user.Shrink() // going idle: drop a burst's big buffer
		mark := m.user.Mark()
		suspended := c.suspended
		m.status.Store(mailboxIdle)
		moved := m.system.NonEmpty() || (!suspended && m.user.Moved(mark))
		if !moved || !m.status.CompareAndSwap(mailboxIdle, mailboxRunning) {
			return
		}
	}
}

// processMailbox runs up to throughput messages between yields, system
// messages first, until no message can be processed. It returns how many it
// processed.
func (c *actorContext) processMailbox(throughput int) (n int) {
	defer func() {
		if r := recover(); r != nil {
			c.handle.sys.logger.Error("actor: panic in Receive", "pid", c.self.Id,
				"message", typeName(messageOf(c.current)), "panic", r, "stack", string(debug.Stack()))
			c.escalateFailure(r, c.current)
			c.current = nil
			n = max(n, 1) // the failed message was progress
		}
	}()
	m := &c.mb
	for i := 0; ; i++ {
		if i >= throughput {
			n += i
			i = 0
			runtime.Gosched()
		}
		if m.system.NonEmpty() {
			if item, ok := m.system.Pop(); ok {
				c.invokeSystem(item)
			}
			continue
		}
		if c.suspended {
			return n + i
		}
		if c.x != nil && len(c.x.unstashed) > 0 {
			item := c.x.unstashed[0]
			c.x.unstashed[0] = nil
			c.x.unstashed = c.x.unstashed[1:]
			c.invokeUser(item)
			continue
		}
		item, ok := m.user.Pop()
		if !ok {
			return n + i
		}
		if m.waiters.Load() > 0 {
			m.wake()
		}
		c.invokeUser(item)
	}
}
