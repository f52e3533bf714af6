package bench

import (
	"context"
	"slices"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"
	"github.com/troupehq/troupe/sdk/actor"
)

// Latency summarises round-trip times.
type Latency struct {
	Mean, P50, P99 time.Duration
}

// summarize sorts samples and returns their mean and percentiles.
func summarize(samples []time.Duration) Latency {
	if len(samples) == 0 {
		return Latency{}
	}
	slices.Sort(samples)
	var sum time.Duration
	for _, d := range samples {
		sum += d
	}
	pct := func(p float64) time.Duration { return samples[int(float64(len(samples)-1)*p)] }
	return Latency{Mean: sum / time.Duration(len(samples)), P50: pct(0.50), P99: pct(0.99)}
}

// RequestConfig: Requests sequential request/response round trips from a
// non-actor caller to an echo actor, after Warmup unmeasured ones.
type RequestConfig struct {
	Requests, Warmup int
}

// DefaultRequest is the local request/response shape.
func DefaultRequest() RequestConfig { return RequestConfig{Requests: 200_000, Warmup: 10_000} }

type echoReq struct{}

// requestTimeout bounds each benchmark request; it never fires in a healthy run.
const requestTimeout = 10 * time.Second

// TroupeRequest measures Troupe's System.Request round trip.
func TroupeRequest(cfg RequestConfig) (Latency, error) {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		return Latency{}, err
	}
	defer shutdown(sys)
	pid := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if m, ok := c.Message().(*echoReq); ok {
			c.Respond(m)
		}
	}))
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	msg := &echoReq{}
	samples := make([]time.Duration, 0, cfg.Requests)
	for i := range cfg.Warmup + cfg.Requests {
		start := time.Now()
		if _, err := sys.Request(ctx, pid, msg); err != nil {
			return Latency{}, err
		}
		if i >= cfg.Warmup {
			samples = append(samples, time.Since(start))
		}
	}
	return summarize(samples), nil
}

// ProtoRequest measures protoactor-go's RequestFuture(...).Result() round trip.
func ProtoRequest(cfg RequestConfig) (Latency, error) {
	sys := newProtoSystem()
	defer sys.Shutdown()
	root := sys.Root
	pid := root.Spawn(pactor.PropsFromFunc(func(c pactor.Context) {
		if m, ok := c.Message().(*echoReq); ok {
			c.Respond(m)
		}
	}))
	msg := &echoReq{}
	samples := make([]time.Duration, 0, cfg.Requests)
	for i := range cfg.Warmup + cfg.Requests {
		start := time.Now()
		if _, err := root.RequestFuture(pid, msg, requestTimeout).Result(); err != nil {
			return Latency{}, err
		}
		if i >= cfg.Warmup {
			samples = append(samples, time.Since(start))
		}
	}
	_ = root.StopFuture(pid).Wait()
	return summarize(samples), nil
}
