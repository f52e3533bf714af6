package bench

import (
	"runtime"
	"sync"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"

	"github.com/troupehq/troupe/sdk/actor"
)

// TroupeSpawnStop spawns actors actors and stops each right after spawning it; the
// run ends when every actor has received Stopped.
func TroupeSpawnStop(actors int) (time.Duration, error) {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		return 0, err
	}
	defer shutdown(sys)
	var wg sync.WaitGroup
	wg.Add(actors)
	props := actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Stopped); ok {
			wg.Done()
		}
	})
	start := time.Now()
	for range actors {
		sys.Stop(sys.Spawn(props))
	}
	wg.Wait()
	return time.Since(start), nil
}

// ProtoSpawnStop is TroupeSpawnStop on protoactor-go.
func ProtoSpawnStop(actors int) (time.Duration, error) {
	sys := newProtoSystem()
	defer sys.Shutdown()
	var wg sync.WaitGroup
	wg.Add(actors)
	props := pactor.PropsFromFunc(func(c pactor.Context) {
		if _, ok := c.Message().(*pactor.Stopped); ok {
			wg.Done()
		}
	})
	root := sys.Root
	start := time.Now()
	for range actors {
		root.Stop(root.Spawn(props))
	}
	wg.Wait()
	return time.Since(start), nil
}

// heapInUse returns the live heap after a full collection.
func heapInUse() uint64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// TroupeIdleBytes spawns actors idle actors and returns the heap bytes per
// actor once every one has processed Started.
func TroupeIdleBytes(actors int) (float64, error) {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		return 0, err
	}
	defer shutdown(sys)
	var wg sync.WaitGroup
	wg.Add(actors)
	started := actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok {
			wg.Done()
		}
	})
	before := heapInUse()
	pids := make([]*actor.PID, actors)
	for i := range actors {
		pids[i] = sys.Spawn(started)
	}
	wg.Wait()
	after := heapInUse()
	runtime.KeepAlive(pids)
	// The PID slice is the benchmark's, not the actors'.
	return (float64(after) - float64(before) - float64(8*actors)) / float64(actors), nil
}

// ProtoIdleBytes is TroupeIdleBytes on protoactor-go.
func ProtoIdleBytes(actors int) (float64, error) {
	sys := newProtoSystem()
	defer sys.Shutdown()
	var wg sync.WaitGroup
	wg.Add(actors)
	started := pactor.PropsFromFunc(func(c pactor.Context) {
		if _, ok := c.Message().(*pactor.Started); ok {
			wg.Done()
		}
	})
	root := sys.Root
	before := heapInUse()
	pids := make([]*pactor.PID, actors)
	for i := range actors {
		pids[i] = root.Spawn(started)
	}
	wg.Wait()
	after := heapInUse()
	runtime.KeepAlive(pids)
	return (float64(after) - float64(before) - float64(8*actors)) / float64(actors), nil
}
