package actor

import "sync"

// Dispatcher runs mailboxes. A mailbox asks for a run only while it has
// messages, so idle actors cost no goroutine.
type Dispatcher interface {
	// Schedule runs fn, which processes messages until the mailbox is empty.
	// It must not block.
	Schedule(fn func())
	// Throughput is how many messages a mailbox processes before it yields
	// the processor to other goroutines.
	Throughput() int
}

// DefaultThroughput is the default Config.Throughput.
const DefaultThroughput = 300

type goroutineDispatcher int

// NewGoroutineDispatcher returns a dispatcher that starts a goroutine for
// each run of a mailbox, yielding every throughput messages. Each run starts
// on a fresh, small stack; the system's own dispatcher, used when props set
// none (see Config.Throughput and Config.IdleWorkers), reuses goroutines
// instead. A throughput <= 0 means DefaultThroughput.
func NewGoroutineDispatcher(throughput int) Dispatcher {
	if throughput <= 0 {
		throughput = DefaultThroughput
	}
	return goroutineDispatcher(throughput)
}

func (d goroutineDispatcher) Schedule(fn func()) { go fn() }
func (d goroutineDispatcher) Throughput() int    { return int(d) }

// workerPool runs the mailboxes of actors whose props set no dispatcher.
// Its workers are goroutines that outlive a mailbox run: a run handed to an
// idle worker starts on a stack that has already grown, where a new
// goroutine would start at 2 KiB and copy its stack as soon as Receive calls
// anything deep. schedule never blocks: with no idle worker it starts a new
// one, and workers beyond maxIdle exit when their run ends.
type workerPool struct {
	maxIdle int

	mu     sync.Mutex
	idle   []chan *actorContext
	closed bool
}

func newWorkerPool(maxIdle int) *workerPool {
	return &workerPool{maxIdle: maxIdle}
}

func (p *workerPool) schedule(c *actorContext) {
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		w := p.idle[n-1]
		p.idle[n-1] = nil
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		w <- c // buffered: never blocks
		return
	}
	p.mu.Unlock()
	go p.work(c)
}

// work runs c's mailbox, then parks as an idle worker until handed the next
// one, or exits if the pool is full or closed.
func (p *workerPool) work(c *actorContext) {
	var tasks chan *actorContext
	for {
		c.runMailbox()
		p.mu.Lock()
		if p.closed || len(p.idle) >= p.maxIdle {
			p.mu.Unlock()
			return
		}
		if tasks == nil {
			tasks = make(chan *actorContext, 1)
		}
		p.idle = append(p.idle, tasks)
		p.mu.Unlock()
		if c = <-tasks; c == nil {
			return
		}
	}
}

// close makes idle workers exit and busy ones exit after their run.
func (p *workerPool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	for _, w := range p.idle {
		close(w)
	}
	p.idle = nil
}
