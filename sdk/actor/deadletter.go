package actor

import (
	"log/slog"
	"reflect"
	"sync"
	"time"
)

// deadLetterProcess receives everything sent to a PID that does not exist.
type deadLetterProcess struct {
	sys *System
}

func (d *deadLetterProcess) SendUserMessage(pid *PID, item any) {
	d.sys.deadLetter(pid, item, ErrDeadLetter)
}

func (d *deadLetterProcess) SendSystemMessage(pid *PID, msg any) {
	switch m := msg.(type) {
	case *Watch:
		// Watching what does not exist yields Terminated at once.
		d.sys.sendSystem(m.Watcher, &Terminated{Who: pid, Reason: ReasonNotFound})
	case *Unwatch, *Stop, *Terminated:
		// Nothing to do for a process that is already gone.
	default:
		d.sys.publishDeadLetter(pid, msg, ErrDeadLetter)
	}
}

func (d *deadLetterProcess) Stop(*PID) {}

// deadLetter publishes an undeliverable message and, if it was a request,
// fails the requester at once: a local future with a DeadLetterError
// carrying reason, any other sender with a DeadLetterResponse.
func (s *System) deadLetter(target *PID, item any, reason error) {
	msg, sender, header := Unwrap(item)
	s.events.Publish(&DeadLetterEvent{PID: target, Message: msg, Sender: sender, Header: header, Reason: reason})
	if sender == nil {
		return
	}
	if _, isResponse := msg.(*DeadLetterResponse); isResponse {
		return // never answer an answer: two dead PIDs would ping-pong forever
	}
	p := s.registry.resolve(sender)
	if f, ok := p.(*Future); ok {
		f.complete(nil, &DeadLetterError{Target: target, Reason: reason})
		return
	}
	resp := &DeadLetterResponse{Target: target}
	if reason != nil {
		resp.Reason = reason.Error()
	}
	p.SendUserMessage(sender, resp)
}

// publishDeadLetter publishes a system message that could not be
// delivered.
func (s *System) publishDeadLetter(target *PID, msg any, reason error) {
	s.events.Publish(&DeadLetterEvent{PID: target, Message: msg, Reason: reason})
}

// deadLetterLogger logs dead letters, at most burst per interval; the rest
// are counted and reported in one line when the next interval starts.
type deadLetterLogger struct {
	logger   *slog.Logger
	interval time.Duration
	burst    int
	now      func() time.Time

	mu         sync.Mutex
	windowEnd  time.Time
	logged     int
	suppressed int
}

func (l *deadLetterLogger) handle(e *DeadLetterEvent) {
	now := l.now()
	l.mu.Lock()
	if now.After(l.windowEnd) {
		if l.suppressed > 0 {
			l.logger.Warn("actor: dead letters suppressed", "count", l.suppressed, "interval", l.interval)
		}
		l.windowEnd = now.Add(l.interval)
		l.logged, l.suppressed = 0, 0
	}
	if l.logged >= l.burst {
		l.suppressed++
		l.mu.Unlock()
		return
	}
	l.logged++
	l.mu.Unlock()
	l.logger.Info("actor: dead letter",
		"target", pidString(e.PID), "message", typeName(e.Message), "sender", pidString(e.Sender), "reason", e.Reason)
}

// typeName returns the Go type of v for logs and errors.
func typeName(v any) string {
	if v == nil {
		return "<nil>"
	}
	return reflect.TypeOf(v).String()
}
