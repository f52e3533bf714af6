package actor

// ReceiverMiddleware wraps an actor's message handling: call next(c) to pass
// the message on, or do not to swallow it. Use it for logging, tracing and
// metrics around Receive.
type ReceiverMiddleware func(next ReceiveFunc) ReceiveFunc

// SenderFunc sends env to target on behalf of the actor c.
type SenderFunc func(c Context, target *PID, env *Envelope)

// SenderMiddleware wraps every send of an actor (Send, Request, Respond,
// Forward and RequestFuture): it may add header entries (copy the Header
// first: it may be shared) or drop the message.
type SenderMiddleware func(next SenderFunc) SenderFunc

// SpawnFunc spawns an actor with the given id and props; parent is nil for
// a top-level actor.
type SpawnFunc func(sys *System, id string, props *Props, parent Context) (*PID, error)

// SpawnMiddleware wraps spawning: it may decorate, log or refuse (return an
// error) the spawn.
type SpawnMiddleware func(next SpawnFunc) SpawnFunc

// chain composes middleware around last; mw[0] ends up outermost.
func chain[M ~func(H) H, H any](mw []M, last H) H {
	h := last
	for i := len(mw) - 1; i >= 0; i-- {
		h = mw[i](h)
	}
	return h
}

// deliver is the end of the sender chain.
func deliver(c Context, target *PID, env *Envelope) {
	c.System().sendUser(target, env)
}
