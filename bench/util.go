package bench

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
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

// timed runs run and returns how long it took.
func timed(run func() error) (time.Duration, error) {
	start := time.Now()
	if err := run(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// concurrently calls call(i) for every i in [0, n) from 2×NumCPU
// goroutines, and returns once every call has returned or after the first
// failure, which it returns (no new call starts after it).
func concurrently(n int, call func(i int) error) error {
	var (
		next   atomic.Int64
		failed atomic.Bool
		once   sync.Once
		first  error
		wg     sync.WaitGroup
	)
	for range 2 * runtime.NumCPU() {
		wg.Go(func() {
			for !failed.Load() {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := call(i); err != nil {
					once.Do(func() { first = err })
					failed.Store(true)
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// identityNames returns prefix0 … prefix(n-1): the grain identities of a
// cluster scenario, made before anything is timed.
func identityNames(prefix string, n int) []string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprint(prefix, i)
	}
	return names
}

// notify sends on ch without blocking: ch has room for one value, so a
// wake-up already pending stands for this one too.
func notify(ch chan<- struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// clusterConvergeTimeout bounds the wait for a member to start and for every
// member to see the whole cluster; it never fires in a healthy run.
const clusterConvergeTimeout = 30 * time.Second

// awaitCluster checks done now and again each time changed fires (both
// runtimes signal it from their topology events, so no poll period adds to
// a timed wait), until done reports true or an error. After
// clusterConvergeTimeout it gives up with the error timedOut returns.
func awaitCluster(changed <-chan struct{}, done func() (bool, error), timedOut func() error) error {
	deadline := time.NewTimer(clusterConvergeTimeout)
	defer deadline.Stop()
	for {
		if ok, err := done(); ok || err != nil {
			return err
		}
		select {
		case <-changed:
		case <-deadline.C:
			return timedOut()
		}
	}
}
