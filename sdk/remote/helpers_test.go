package remote

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/protobuf/types/known/wrapperspb"

	"github.com/troupehq/troupe/sdk/actor"
)

func TestMain(m *testing.M) {
	if runPeerProcess() {
		return
	}
	goleak.VerifyTestMain(m)
}

// waitTimeout bounds every wait; a healthy run never gets near it.
const waitTimeout = 20 * time.Second

// node is an actor system with a started Remote.
type node struct {
	sys  *actor.System
	r    *Remote
	logs *logLines
}

// fastConfig keeps failure handling quick in tests.
func fastConfig() Config {
	return Config{
		ReconnectBackoff:    5 * time.Millisecond,
		MaxReconnectBackoff: 50 * time.Millisecond,
		ReconnectTimeout:    500 * time.Millisecond,
		DialTimeout:         time.Second,
		HandshakeTimeout:    time.Second,
	}
}

// startNode starts a system and its Remote on an ephemeral loopback port;
// both are shut down when the test ends.
func startNode(t *testing.T, cfg Config) *node {
	t.Helper()
	logs := &logLines{}
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	r, err := New(sys, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	n := &node{sys: sys, r: r, logs: logs}
	t.Cleanup(func() { n.stop(t) })
	return n
}

func (n *node) stop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if err := n.r.Shutdown(ctx); err != nil {
		t.Errorf("remote shutdown: %v", err)
	}
	if err := n.sys.Shutdown(ctx); err != nil {
		t.Errorf("system shutdown: %v", err)
	}
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}

// echo answers a StringValue with the same text, prefixed with the header
// value "prefix" if any.
func echo(c actor.Context) {
	if m, ok := c.Message().(*wrapperspb.StringValue); ok {
		c.Respond(wrapperspb.String(c.Header().Get("prefix") + m.GetValue()))
	}
}

func str(s string) *wrapperspb.StringValue { return wrapperspb.String(s) }

// eventually polls cond until it holds or waitTimeout passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// collector gathers values sent from actors or event handlers.
type collector[T any] struct {
	mu    sync.Mutex
	items []T
}

func (c *collector[T]) add(v T) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.items = append(c.items, v)
}

func (c *collector[T]) snapshot() []T {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]T(nil), c.items...)
}

func (c *collector[T]) wait(t *testing.T, n int) []T {
	t.Helper()
	eventually(t, "collected items", func() bool { return len(c.snapshot()) >= n })
	return c.snapshot()
}

// logLines is a slog handler that keeps each record as one line.
type logLines struct {
	mu    sync.Mutex
	lines []string
	attrs []slog.Attr
	root  *logLines
}

func (l *logLines) Enabled(context.Context, slog.Level) bool { return true }

func (l *logLines) Handle(_ context.Context, r slog.Record) error {
	line := r.Message
	for _, a := range l.attrs {
		line += " " + a.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		line += " " + a.String()
		return true
	})
	root := l.rootLog()
	root.mu.Lock()
	defer root.mu.Unlock()
	root.lines = append(root.lines, line)
	return nil
}

func (l *logLines) rootLog() *logLines {
	if l.root != nil {
		return l.root
	}
	return l
}

func (l *logLines) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &logLines{attrs: append(append([]slog.Attr(nil), l.attrs...), attrs...), root: l.rootLog()}
}

func (l *logLines) WithGroup(string) slog.Handler { return l }

// contains reports whether a logged line contains every part.
func (l *logLines) contains(parts ...string) bool {
	root := l.rootLog()
	root.mu.Lock()
	defer root.mu.Unlock()
	for _, line := range root.lines {
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
