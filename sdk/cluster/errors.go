package cluster

import (
	"errors"
	"fmt"
)

// Errors of grain calls. Transport and ownership failures are retried
// within the call's context; what remains when it ends wraps one of these
// (or the context's error).
var (
	// ErrNoHost: no member hosts the identity's kind.
	ErrNoHost = errors.New("cluster: no member hosts the kind")
	// ErrOwnership: the identity's owner could not answer (the topology is
	// changing, or the owner is leaving). Retried.
	ErrOwnership = errors.New("cluster: owner unavailable")
	// ErrActivationFailed: the activation could not start (its producer
	// failed). Not retried.
	ErrActivationFailed = errors.New("cluster: activation failed")
	// ErrNotStarted: the cluster is not running.
	ErrNotStarted = errors.New("cluster: not running")
	// ErrMemberLeft: the member a call was waiting on left the cluster,
	// was restarted at its address, or lost its connection to this one,
	// so the answer may never come. Retried.
	ErrMemberLeft = errors.New("cluster: member left")
	// ErrInvalidConfig: a Config (from New) or a CallOption (from a grain
	// call) has a value out of range. Not retried.
	ErrInvalidConfig = errors.New("cluster: invalid config")
)

// Error returns the code and message.
func (e *GrainError) Error() string {
	if e.GetMessage() == "" {
		return "grain error " + e.GetCode()
	}
	return "grain error " + e.GetCode() + ": " + e.GetMessage()
}

// Is reports whether target is a *GrainError with the same code, so that
// errors.Is(err, &cluster.GrainError{Code: "not_found"}) matches any
// message.
func (e *GrainError) Is(target error) bool {
	t, ok := target.(*GrainError)
	return ok && t.GetCode() == e.GetCode()
}

// NewGrainError returns a GrainError; a grain answers a request with it
// (c.Respond(cluster.NewGrainError(...))) to fail the call without retries.
func NewGrainError(code, format string, args ...any) *GrainError {
	return &GrainError{Code: code, Message: fmt.Sprintf(format, args...)}
}
