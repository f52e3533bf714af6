package actor

import "slices"

// Props describes how to create and run an actor. Build it with
// PropsFromProducer or PropsFromFunc and options; it is immutable and may be
// shared by any number of spawns.
type Props struct {
	producer   Producer
	mailbox    MailboxConfig
	dispatcher Dispatcher
	supervisor SupervisorStrategy

	receiverMiddleware []ReceiverMiddleware
	senderMiddleware   []SenderMiddleware
	spawnMiddleware    []SpawnMiddleware

	senderChain SenderFunc // nil without sender middleware
	spawnChain  SpawnFunc  // nil without spawn middleware
}

// PropsOption configures Props.
type PropsOption func(*Props)

// PropsFromProducer returns props for actors made by producer.
func PropsFromProducer(producer Producer, opts ...PropsOption) *Props {
	return (&Props{producer: producer}).build(opts)
}

// With returns a copy of p with more options applied; p is unchanged.
// Middleware options append to p's middleware.
func (p *Props) With(opts ...PropsOption) *Props {
	c := *p
	c.receiverMiddleware = slices.Clone(p.receiverMiddleware)
	c.senderMiddleware = slices.Clone(p.senderMiddleware)
	c.spawnMiddleware = slices.Clone(p.spawnMiddleware)
	return c.build(opts)
}

func (p *Props) build(opts []PropsOption) *Props {
	for _, opt := range opts {
		opt(p)
	}
	p.senderChain, p.spawnChain = nil, nil
	if len(p.senderMiddleware) > 0 {
		p.senderChain = chain(p.senderMiddleware, deliver)
	}
	if len(p.spawnMiddleware) > 0 {
		p.spawnChain = chain(p.spawnMiddleware, spawnActor)
	}
	return p
}

// PropsFromFunc returns props for a stateless actor handled by f.
func PropsFromFunc(f ReceiveFunc, opts ...PropsOption) *Props {
	return PropsFromProducer(func() Actor { return f }, opts...)
}

// WithMailbox sets the mailbox configuration (default: unbounded).
func WithMailbox(cfg MailboxConfig) PropsOption {
	return func(p *Props) { p.mailbox = cfg }
}

// WithDispatcher sets the dispatcher (default: the system's pool of worker
// goroutines, configured by Config.Throughput and Config.IdleWorkers).
func WithDispatcher(d Dispatcher) PropsOption {
	return func(p *Props) { p.dispatcher = d }
}

// WithSupervisor sets the strategy that supervises the actor's children
// (default: the system's Config.SupervisorStrategy).
func WithSupervisor(s SupervisorStrategy) PropsOption {
	return func(p *Props) { p.supervisor = s }
}

// WithReceiverMiddleware appends middleware around the actor's Receive; the
// first given is the outermost.
func WithReceiverMiddleware(mw ...ReceiverMiddleware) PropsOption {
	return func(p *Props) { p.receiverMiddleware = append(p.receiverMiddleware, mw...) }
}

// WithSenderMiddleware appends middleware around every message the actor
// sends; the first given is the outermost.
func WithSenderMiddleware(mw ...SenderMiddleware) PropsOption {
	return func(p *Props) { p.senderMiddleware = append(p.senderMiddleware, mw...) }
}

// WithSpawnMiddleware appends middleware around spawning actors with these
// props; the first given is the outermost.
func WithSpawnMiddleware(mw ...SpawnMiddleware) PropsOption {
	return func(p *Props) { p.spawnMiddleware = append(p.spawnMiddleware, mw...) }
}
