package bench

import (
	"runtime"
	"sync"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"

	"github.com/troupehq/troupe/sdk/actor"
)

// PingPongConfig is the shape of protoactor-go's actor-inprocess-benchmark:
// Pairs ping/pong actor pairs; each ping actor sends Messages pings in
// batches of Batch, sending the next batch when every pong of the previous
// one is back.
type PingPongConfig struct {
	Pairs    int
	Messages int
	Batch    int
	// Throughput is the dispatcher throughput (protoactor's example uses
	// 300): protoactor-go's default dispatcher, Troupe's system dispatcher.
	Throughput int
	// Capacity of the mailboxes; 0 means each runtime's default, unbounded
	// mailbox. protoactor-go's benchmark bounds them at Batch+10.
	Capacity int
}

// DefaultPingPong is the benchmark's shape: 2×NumCPU pairs, 1M messages each
// way per pair, batches of 100, bounded mailboxes of batch+10.
func DefaultPingPong() PingPongConfig {
	return PingPongConfig{Pairs: 2 * runtime.NumCPU(), Messages: 1_000_000, Batch: 100, Throughput: 300, Capacity: 110}
}

// Total is the number of messages exchanged (each way counted).
func (c PingPongConfig) Total() int { return 2 * c.Pairs * c.Messages }

type ppMsg struct{ sender *actor.PID }
type ppStart struct{ sender *actor.PID }

type troupePing struct {
	remaining, inFlight, batch int
	done                       *sync.WaitGroup
}

func (p *troupePing) sendBatch(c actor.Context, to *actor.PID) bool {
	if p.remaining == 0 {
		return false
	}
	m := &ppMsg{sender: c.Self()}
	for range p.batch {
		c.Send(to, m)
	}
	p.remaining -= p.batch
	p.inFlight = p.batch
	return true
}

func (p *troupePing) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *ppStart:
		p.sendBatch(c, m.sender)
	case *ppMsg:
		p.inFlight--
		if p.inFlight > 0 {
			return
		}
		if !p.sendBatch(c, m.sender) {
			p.done.Done()
		}
	}
}

func troupePong(c actor.Context) {
	if m, ok := c.Message().(*ppMsg); ok {
		c.Send(m.sender, &ppMsg{sender: c.Self()})
	}
}

// TroupePingPong runs the ping-pong on Troupe and returns the elapsed time.
func TroupePingPong(cfg PingPongConfig) (time.Duration, error) {
	sys, err := actor.NewSystem(actor.Config{Throughput: cfg.Throughput})
	if err != nil {
		return 0, err
	}
	defer shutdown(sys)
	var done sync.WaitGroup
	mb := actor.WithMailbox(actor.MailboxConfig{Capacity: cfg.Capacity})
	pings := make([]*actor.PID, cfg.Pairs)
	pongs := make([]*actor.PID, cfg.Pairs)
	for i := range cfg.Pairs {
		pings[i] = sys.Spawn(actor.PropsFromProducer(func() actor.Actor {
			return &troupePing{remaining: cfg.Messages, batch: cfg.Batch, done: &done}
		}, mb))
		pongs[i] = sys.Spawn(actor.PropsFromFunc(troupePong, mb))
		done.Add(1)
	}
	start := time.Now()
	for i := range cfg.Pairs {
		sys.Send(pings[i], &ppStart{sender: pongs[i]})
	}
	done.Wait()
	return time.Since(start), nil
}

type paMsg struct{ sender *pactor.PID }
type paStart struct{ sender *pactor.PID }

type protoPing struct {
	remaining, inFlight, batch int
	done                       *sync.WaitGroup
}

func (p *protoPing) sendBatch(c pactor.Context, to *pactor.PID) bool {
	if p.remaining == 0 {
		return false
	}
	var m any = &paMsg{sender: c.Self()}
	for range p.batch {
		c.Send(to, m)
	}
	p.remaining -= p.batch
	p.inFlight = p.batch
	return true
}

func (p *protoPing) Receive(c pactor.Context) {
	switch m := c.Message().(type) {
	case *paStart:
		p.sendBatch(c, m.sender)
	case *paMsg:
		p.inFlight--
		if p.inFlight > 0 {
			return
		}
		if !p.sendBatch(c, m.sender) {
			p.done.Done()
		}
	}
}

func protoPong(c pactor.Context) {
	if m, ok := c.Message().(*paMsg); ok {
		c.Send(m.sender, &paMsg{sender: c.Self()})
	}
}

// ProtoPingPong runs the same ping-pong on protoactor-go.
func ProtoPingPong(cfg PingPongConfig) (time.Duration, error) {
	sys := newProtoSystem()
	defer sys.Shutdown()
	var done sync.WaitGroup
	d := pactor.NewDefaultDispatcher(cfg.Throughput)
	mb := pactor.WithMailbox(pactor.Unbounded())
	if cfg.Capacity > 0 {
		mb = pactor.WithMailbox(pactor.Bounded(cfg.Capacity))
	}
	root := sys.Root
	pings := make([]*pactor.PID, cfg.Pairs)
	pongs := make([]*pactor.PID, cfg.Pairs)
	for i := range cfg.Pairs {
		pings[i] = root.Spawn(pactor.PropsFromProducer(func() pactor.Actor {
			return &protoPing{remaining: cfg.Messages, batch: cfg.Batch, done: &done}
		}, mb, pactor.WithDispatcher(d)))
		pongs[i] = root.Spawn(pactor.PropsFromFunc(protoPong, mb, pactor.WithDispatcher(d)))
		done.Add(1)
	}
	start := time.Now()
	for i := range cfg.Pairs {
		root.Send(pings[i], &paStart{sender: pongs[i]})
	}
	done.Wait()
	elapsed := time.Since(start)
	for i := range cfg.Pairs {
		_ = root.StopFuture(pings[i]).Wait()
		_ = root.StopFuture(pongs[i]).Wait()
	}
	return elapsed, nil
}
