package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime/trace"
	"strings"
)

// traceEnv names a directory: when it is set, the latency scenarios write
// execution traces there (see the package documentation).
const traceEnv = "TROUPE_BENCH_TRACE"

// traceCategory and the two messages below are the log events that delimit
// each measured request in a trace.
const (
	traceCategory = "troupe-bench/request"
	requestStart  = "start"
	requestEnd    = "end"
)

// startTrace starts tracing this process into DIR/NAME.trace, name's
// slashes made dashes, if traceEnv is set and no trace is running (a child
// traces its whole life; see runChild). DIR is made if it does not exist.
// The returned function stops it.
func startTrace(name string) (stop func() error, err error) {
	dir := os.Getenv(traceEnv)
	if dir == "" || trace.IsEnabled() {
		return func() error { return nil }, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	f, err := os.Create(filepath.Join(dir, strings.ReplaceAll(name, "/", "-")+".trace"))
	if err != nil {
		return nil, err
	}
	if err := trace.Start(f); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("trace %s: %w", name, err)
	}
	return func() error {
		trace.Stop()
		return f.Close()
	}, nil
}

// markRequest logs the start or end of a measured request in the running
// trace, if any.
func markRequest(what string) {
	if trace.IsEnabled() {
		trace.Log(context.Background(), traceCategory, what)
	}
}
