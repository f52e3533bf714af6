package actor

import "errors"

// Errors returned by the runtime. Match them with errors.Is: the errors the
// runtime returns wrap them with the PID or name concerned.
var (
	// ErrNameExists: SpawnNamed was given a name already in use.
	ErrNameExists = errors.New("actor: name already in use")
	// ErrDeadLetter: the target of a request does not exist (it never did, or
	// it has stopped), so no answer will ever come.
	ErrDeadLetter = errors.New("actor: dead letter: no such process")
	// ErrTimeout: a future's timeout passed before the answer came.
	ErrTimeout = errors.New("actor: request timed out")
	// ErrMailboxFull: a bounded mailbox with the OverflowDrop policy was full.
	ErrMailboxFull = errors.New("actor: mailbox full")
	// ErrActorStopped: the message reached an actor after it stopped.
	ErrActorStopped = errors.New("actor: actor stopped")
	// ErrSystemShutdown: the actor system is shutting down or shut down.
	ErrSystemShutdown = errors.New("actor: system shut down")
	// ErrNilPID: a nil PID was given where a PID is required.
	ErrNilPID = errors.New("actor: nil PID")
)

// DeadLetterError is the error of a request that could not be delivered.
// errors.Is(err, ErrDeadLetter) holds for it, and errors.Is / errors.As
// reach its Reason (for example ErrMailboxFull, or a transport's error).
// A reason that is one of this package's errors matches with errors.Is
// also when the dead letter happened on another actor system.
type DeadLetterError struct {
	// Target is the intended recipient.
	Target *PID
	// Reason says why the request was not delivered.
	Reason error
}

// Error names the target and the reason.
func (e *DeadLetterError) Error() string {
	if e.Reason == nil || e.Reason == ErrDeadLetter {
		return ErrDeadLetter.Error() + ": " + pidString(e.Target)
	}
	return ErrDeadLetter.Error() + ": " + pidString(e.Target) + ": " + e.Reason.Error()
}

// Is reports whether target is ErrDeadLetter.
func (e *DeadLetterError) Is(target error) bool { return target == ErrDeadLetter }

// Unwrap returns the reason.
func (e *DeadLetterError) Unwrap() error { return e.Reason }
