package actor

import "time"

// Lifecycle messages, delivered to an actor's Receive as pointers (match
// *Started, *Stopping and so on).
type (
	// Started is the first message an actor receives, and the first after a
	// restart.
	Started struct{}
	// Stopping is received when the actor begins to stop, before its
	// children are stopped.
	Stopping struct{}
	// Stopped is the last message an actor receives: it and its children are
	// gone from the registry.
	Stopped struct{}
	// Restarting is received by the failed instance before the supervisor
	// replaces it with a fresh one.
	Restarting struct{}
	// ReceiveTimeout is received when no message arrived for the duration
	// set with Context.SetReceiveTimeout.
	ReceiveTimeout struct{}
)

// NotInfluenceReceiveTimeout is implemented by messages that do not count as
// activity for Context.SetReceiveTimeout (health probes, metrics ticks).
type NotInfluenceReceiveTimeout interface {
	NotInfluenceReceiveTimeout()
}

// The lifecycle messages carry no data; one instance of each serves every
// actor.
var (
	startedMsg        = &Started{}
	stoppingMsg       = &Stopping{}
	stoppedMsg        = &Stopped{}
	restartingMsg     = &Restarting{}
	receiveTimeoutMsg = &ReceiveTimeout{}
)

// NotInfluenceReceiveTimeout marks ReceiveTimeout: receiving it does not
// restart the timer.
func (*ReceiveTimeout) NotInfluenceReceiveTimeout() {}

// System messages internal to the runtime. Watch, Unwatch, Stop and
// Terminated are protobuf messages (actor.pb.go) because they cross the
// network.
type (
	// failure tells a supervisor that a child failed.
	failure struct {
		child   *PID
		reason  any
		message any
		stats   *RestartStatistics
		// noInstance: the producer failed on restart (see
		// RestartStatistics.noInstance).
		noInstance bool
	}
	restartMsg   struct{}
	resumeMsg    struct{}
	continuation struct {
		item any // the message being processed when the continuation was set up
		fn   func()
	}
)

var (
	restartSys = &restartMsg{}
	resumeSys  = &resumeMsg{}
	stopSys    = &Stop{}
)

// Reasons for Terminated, with Go names for the generated enum values.
const (
	ReasonStopped           = TerminatedReason_TERMINATED_REASON_STOPPED
	ReasonAddressTerminated = TerminatedReason_TERMINATED_REASON_ADDRESS_TERMINATED
	ReasonNotFound          = TerminatedReason_TERMINATED_REASON_NOT_FOUND
)

// Header carries string metadata along with a message: trace ids, tenant,
// deadlines. Read it with Context.Header. A Header is not modified once sent.
type Header map[string]string

// Get returns the value for key, or "" (a nil Header is empty).
func (h Header) Get(key string) string { return h[key] }

// Envelope wraps a message with its sender and header. Send an *Envelope to
// attach a header; the receiver sees the inner Message, its Sender and
// Header. The runtime wraps requests in envelopes itself.
type Envelope struct {
	// Message is what the receiver handles.
	Message any
	// Sender is who a reply goes to; nil for none.
	Sender *PID
	// Header is metadata that travels with the message; nil for none.
	Header Header
}

// Unwrap splits a mailbox item into message, sender and header.
func Unwrap(item any) (msg any, sender *PID, header Header) {
	if e, ok := item.(*Envelope); ok && e != nil {
		return e.Message, e.Sender, e.Header
	}
	return item, nil, nil
}

// withSender returns item wrapped so that its sender is sender, keeping any
// header, without modifying an envelope the caller owns.
func withSender(item any, sender *PID) *Envelope {
	if e, ok := item.(*Envelope); ok && e != nil {
		return &Envelope{Message: e.Message, Sender: sender, Header: e.Header}
	}
	return &Envelope{Message: item, Sender: sender}
}

// messageOf returns the message inside a mailbox item.
func messageOf(item any) any {
	if e, ok := item.(*Envelope); ok && e != nil {
		return e.Message
	}
	return item
}

// SupervisorEvent is published on the event stream each time a supervisor
// decides what to do with a failed child.
type SupervisorEvent struct {
	// Child is the actor that failed.
	Child *PID
	// Reason is the recovered panic value.
	Reason any
	// Directive is what its supervisor decided.
	Directive Directive
}

// DeadLetterEvent is published on the event stream for every message that
// could not be delivered.
type DeadLetterEvent struct {
	// PID is the intended recipient.
	PID *PID
	// Message is the undelivered message (unwrapped from its envelope).
	Message any
	// Sender is the message's sender, if any.
	Sender *PID
	// Header is the message's header, if any.
	Header Header
	// Reason says why delivery failed (ErrDeadLetter, ErrMailboxFull,
	// ErrActorStopped, or a transport's error).
	Reason error
}

// monotonic returns nanoseconds on the monotonic clock since base.
func monotonic(base time.Time) int64 { return int64(time.Since(base)) }
