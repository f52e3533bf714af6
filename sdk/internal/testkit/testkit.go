// Package testkit holds what the SDK's tests share: a bounded wait for a
// condition, a context for a test, a recorder of values, a log capture,
// and a TCP proxy that cuts connections as a network failure would. Only
// tests and test fixtures (cluster/clustertest) import it.
package testkit

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Timeout bounds every wait of a test; a healthy run never gets near it.
const Timeout = 20 * time.Second

// pollInterval is how often Eventually looks at its condition.
const pollInterval = time.Millisecond

// Context returns a context that ends after Timeout or with the test.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return ctx
}

// Eventually polls cond until it holds, failing the test if it does not
// within Timeout.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	Await(t, Timeout, what, func() string {
		if cond() {
			return ""
		}
		return "still false"
	})
}

// Await polls check until it returns "", failing the test with check's
// last answer (what is still missing) if that takes longer than timeout.
func Await(t testing.TB, timeout time.Duration, what string, check func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		missing := check()
		if missing == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s: %s", timeout, what, missing)
		}
		time.Sleep(pollInterval)
	}
}

// Recorder collects values from actors and event handlers; its zero value
// is ready to use.
type Recorder[T any] struct {
	mu     sync.Mutex
	items  []T
	notify chan struct{} // a token after each Add
}

func (r *Recorder[T]) signal() chan struct{} {
	if r.notify == nil {
		r.notify = make(chan struct{}, 1)
	}
	return r.notify
}

// Add records v.
func (r *Recorder[T]) Add(v T) {
	r.mu.Lock()
	r.items = append(r.items, v)
	notify := r.signal()
	r.mu.Unlock()
	select {
	case notify <- struct{}{}:
	default:
	}
}

// Snapshot returns a copy of what was recorded.
func (r *Recorder[T]) Snapshot() []T {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]T(nil), r.items...)
}

// WaitLen waits until at least n values were recorded and returns them,
// failing the test after Timeout.
func (r *Recorder[T]) WaitLen(t testing.TB, n int) []T {
	t.Helper()
	r.mu.Lock()
	notify := r.signal()
	r.mu.Unlock()
	timer := time.NewTimer(Timeout)
	defer timer.Stop()
	for {
		if items := r.Snapshot(); len(items) >= n {
			return items
		}
		select {
		case <-notify:
		case <-timer.C:
			have := r.Snapshot()
			t.Fatalf("timed out waiting for %d recorded values; have %d, the first: %v", n, len(have), have[:min(len(have), 10)])
		}
	}
}

// Logs is a slog.Handler that keeps every record as a line "message
// key=value ...", for tests that check what was logged.
type Logs struct {
	lines *lines
	attrs []slog.Attr
}

type lines struct {
	mu  sync.Mutex
	all []string
}

// NewLogs returns an empty capture.
func NewLogs() *Logs { return &Logs{lines: &lines{}} }

// Enabled reports true: every level is kept.
func (l *Logs) Enabled(context.Context, slog.Level) bool { return true }

// Handle keeps r as a line.
func (l *Logs) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	add := func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	}
	for _, a := range l.attrs {
		add(a)
	}
	r.Attrs(add)
	l.lines.mu.Lock()
	defer l.lines.mu.Unlock()
	l.lines.all = append(l.lines.all, line)
	return nil
}

// WithAttrs returns a handler that adds attrs to every line.
func (l *Logs) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &Logs{lines: l.lines, attrs: append(append([]slog.Attr(nil), l.attrs...), attrs...)}
}

// WithGroup ignores groups.
func (l *Logs) WithGroup(string) slog.Handler { return l }

// Lines returns a copy of the lines so far.
func (l *Logs) Lines() []string {
	l.lines.mu.Lock()
	defer l.lines.mu.Unlock()
	return append([]string(nil), l.lines.all...)
}

// Count returns how many lines start with prefix.
func (l *Logs) Count(prefix string) int {
	l.lines.mu.Lock()
	defer l.lines.mu.Unlock()
	n := 0
	for _, line := range l.lines.all {
		if strings.HasPrefix(line, prefix) {
			n++
		}
	}
	return n
}

// Contains reports whether a line contains every part.
func (l *Logs) Contains(parts ...string) bool {
	l.lines.mu.Lock()
	defer l.lines.mu.Unlock()
	for _, line := range l.lines.all {
		ok := true
		for _, p := range parts {
			ok = ok && strings.Contains(line, p)
		}
		if ok {
			return true
		}
	}
	return false
}
