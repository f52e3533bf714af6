package actor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Future is the pending answer to a request. It is a process of its own:
// the reply, sent to its PID, completes it. A future completes exactly once,
// with the reply or an error (ErrTimeout, ErrDeadLetter, ErrSystemShutdown,
// or the context's error).
type Future struct {
	handle procHandle
	pid    *PID
	done   chan struct{}

	mu        sync.Mutex
	completed bool
	result    any
	err       error
	timer     *time.Timer
	callbacks []func(any, error)
}

// newFuture registers a future; with timeout > 0 it fails with ErrTimeout
// after that long. timeout < 0 means no timeout (callers that wait on a
// context).
func (s *System) newFuture(timeout time.Duration) *Future {
	f := &Future{done: make(chan struct{})}
	f.handle = procHandle{p: f, sys: s}
	r := s.registry
	// add fails only when the id is taken: freshID takes the next.
	f.pid, _ = freshID(func() string { return r.nextID(FutureIDPrefix) }, func(id string) (*PID, error) {
		return r.add(id, &f.handle)
	})
	if timeout == 0 {
		timeout = s.cfg.RequestTimeout
	}
	if timeout > 0 {
		f.mu.Lock()
		f.timer = time.AfterFunc(timeout, func() {
			f.complete(nil, fmt.Errorf("%w after %v", ErrTimeout, timeout))
		})
		f.mu.Unlock()
	}
	return f
}

// PID returns the future's PID: the sender to reply to.
func (f *Future) PID() *PID { return f.pid }

// Done is closed when the future completes.
func (f *Future) Done() <-chan struct{} { return f.done }

// Result waits for the future and returns the reply or the error.
func (f *Future) Result() (any, error) {
	<-f.done
	return f.result, f.err
}

// Wait waits for the future and returns its error.
func (f *Future) Wait() error {
	_, err := f.Result()
	return err
}

// Await waits for the future or for ctx, whichever ends first; if ctx ends
// first the future is cancelled with ctx's error.
func (f *Future) Await(ctx context.Context) (any, error) {
	select {
	case <-f.done:
	case <-ctx.Done():
		f.complete(nil, fmt.Errorf("actor: request to future %s: %w", f.pid.Id, context.Cause(ctx)))
		<-f.done
	}
	return f.result, f.err
}

// Fail completes the future with err, unless it has completed already:
// for a caller that stops waiting for a reason of its own. A reply that
// arrives later goes to dead letters.
func (f *Future) Fail(err error) { f.complete(nil, err) }

// complete settles the future once; later calls do nothing.
func (f *Future) complete(result any, err error) {
	f.mu.Lock()
	if f.completed {
		f.mu.Unlock()
		return
	}
	f.completed = true
	f.result, f.err = result, err
	if f.timer != nil {
		f.timer.Stop()
	}
	callbacks := f.callbacks
	f.callbacks = nil
	f.mu.Unlock()
	// Unregistered before anyone sees the outcome: a completed future is no
	// process any more.
	f.handle.sys.registry.Remove(f.pid)
	close(f.done)
	for _, cb := range callbacks {
		cb(result, err)
	}
}

// onComplete calls cb with the outcome once the future completes (at once if
// it already has), on the completing goroutine.
func (f *Future) onComplete(cb func(any, error)) {
	f.mu.Lock()
	if !f.completed {
		f.callbacks = append(f.callbacks, cb)
		f.mu.Unlock()
		return
	}
	f.mu.Unlock()
	cb(f.result, f.err)
}

// SendUserMessage completes the future with the reply.
func (f *Future) SendUserMessage(_ *PID, item any) {
	msg := messageOf(item)
	if dl, ok := msg.(*DeadLetterResponse); ok {
		f.complete(nil, &DeadLetterError{Target: dl.Target, Reason: reasonOf(dl.Reason)})
		return
	}
	f.complete(msg, nil)
}

// runtimeReasons are the runtime's own dead-letter reasons, which a
// DeadLetterResponse from another system carries as text.
var runtimeReasons = []error{ErrDeadLetter, ErrActorStopped, ErrMailboxFull, ErrSystemShutdown, ErrNilPID}

// reasonOf turns the reason of a DeadLetterResponse back into an error:
// one of the runtime's, so that errors.Is matches it on the requester's
// side too, or one with the text given.
func reasonOf(text string) error {
	if text == "" {
		return nil
	}
	for _, err := range runtimeReasons {
		if err.Error() == text {
			return err
		}
	}
	return errors.New(text)
}

// SendSystemMessage completes the future with a Terminated (futures that
// watch an actor stop), fails it on Stop, and answers a Watch with a
// Terminated once the future is gone; other system messages are ignored.
func (f *Future) SendSystemMessage(_ *PID, msg any) {
	switch m := msg.(type) {
	case *Terminated:
		f.complete(m, nil)
	case *Stop:
		f.Stop(f.pid)
	case *Watch:
		sys, watcher := f.handle.sys, m.Watcher
		f.onComplete(func(any, error) {
			sys.sendSystem(watcher, &Terminated{Who: f.pid, Reason: ReasonStopped})
		})
	}
}

// Stop fails the future.
func (f *Future) Stop(*PID) { f.complete(nil, ErrActorStopped) }

// pidString formats a PID for errors and logs.
func pidString(pid *PID) string {
	if pid == nil {
		return "<nil>"
	}
	return pid.Address + "/" + pid.Id
}
