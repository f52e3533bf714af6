package bench

import (
	"runtime"
	"sync"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"

	"github.com/troupehq/troupe/sdk/actor"
)

// FanInConfig is the shape of the fan-in scenario: Senders goroutines
// outside the actor system each send Messages messages to one actor, which
// counts them (the mailbox under contention from many producers).
type FanInConfig struct {
	Senders, Messages int
}

// DefaultFanIn is 2×NumCPU senders of 500k messages each.
func DefaultFanIn() FanInConfig { return FanInConfig{Senders: 2 * runtime.NumCPU(), Messages: 500_000} }

// Total is the number of messages sent.
func (c FanInConfig) Total() int { return c.Senders * c.Messages }

type fanMsg struct{}

// fanIn sends from cfg.Senders goroutines with send and waits on done.
func fanIn(cfg FanInConfig, send func(), done <-chan struct{}) time.Duration {
	start := time.Now()
	var wg sync.WaitGroup
	for range cfg.Senders {
		wg.Go(func() {
			for range cfg.Messages {
				send()
			}
		})
	}
	wg.Wait()
	<-done
	return time.Since(start)
}

// TroupeFanIn runs the fan-in on Troupe.
func TroupeFanIn(cfg FanInConfig) (time.Duration, error) {
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		return 0, err
	}
	defer shutdown(sys)
	done := make(chan struct{})
	n := 0
	pid := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*fanMsg); ok {
			if n++; n == cfg.Total() {
				close(done)
			}
		}
	}))
	m := &fanMsg{}
	return fanIn(cfg, func() { sys.Send(pid, m) }, done), nil
}

// ProtoFanIn runs the fan-in on protoactor-go.
func ProtoFanIn(cfg FanInConfig) (time.Duration, error) {
	sys := newProtoSystem()
	defer sys.Shutdown()
	done := make(chan struct{})
	n := 0
	pid := sys.Root.Spawn(pactor.PropsFromFunc(func(c pactor.Context) {
		if _, ok := c.Message().(*fanMsg); ok {
			if n++; n == cfg.Total() {
				close(done)
			}
		}
	}))
	m := &fanMsg{}
	return fanIn(cfg, func() { sys.Root.Send(pid, m) }, done), nil
}
