// Package bench measures Troupe's hot paths side by side with
// github.com/asynkron/protoactor-go, in the same process and run. Each
// scenario has a Troupe and a protoactor-go implementation of the same
// shape; cmd/troupe-bench prints them as a table and the Benchmark
// functions expose them to `go test -bench`.
package bench

import (
	"context"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
)

// shutdownTimeout bounds the shutdown of a benchmark's actor system.
const shutdownTimeout = 30 * time.Second

func shutdown(sys *actor.System) {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = sys.Shutdown(ctx)
}
