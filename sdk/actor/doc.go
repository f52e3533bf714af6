// Package actor is Troupe's local actor runtime.
//
// An actor is state plus a Receive method that handles one message at a
// time. Actors are spawned from Props on a System and addressed by PID,
// locally or, with package remote, across the network; a PID is a protobuf
// message, so it can travel inside your own messages.
//
//	sys, _ := actor.NewSystem(actor.Config{})
//	pid := sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
//		if name, ok := c.Message().(string); ok {
//			c.Respond("hello " + name)
//		}
//	}))
//	reply, err := sys.Request(ctx, pid, "world")
//
// # Delivery
//
// Messages from one sender to one receiver arrive in the order sent. Each
// actor has a mailbox of two lock-free queues: system messages (Stop, Watch,
// Terminated, supervision) overtake user messages. A mailbox gets a
// goroutine only while it has messages, and gives the processor up every
// Throughput messages, so a million idle actors cost memory but no
// goroutines. A mailbox is unbounded unless MailboxConfig.Capacity is set;
// a full bounded mailbox blocks the sender or drops to dead letters,
// according to its OverflowPolicy.
//
// A message to a PID that does not exist is a dead letter: it is published
// as a DeadLetterEvent (and logged, throttled), and if it was a request the
// requester fails at once with ErrDeadLetter rather than waiting for a
// timeout.
//
// # Requests
//
// System.Request(ctx, pid, msg) waits for the reply within ctx;
// RequestFuture returns a Future; inside an actor, Context.Request makes the
// reply arrive as a message and Context.ReenterAfter continues on the
// actor's goroutine once a future completes, without blocking the actor.
//
// # Names
//
// Spawn, and SpawnNamed with an empty name, give an actor a generated id:
// "$" and base-36 digits. A future's id starts with FutureIDPrefix ("$~")
// instead, so that a remote, which sees each future's id once, caches
// nothing about it. A user may name an actor as the system would; generated
// ids then skip the names taken. The digits count on from the wall clock in
// nanoseconds when the system starts, so a process restarted at the same
// address never makes an id the one before it made: a message sent to an
// actor of the old process, or an answer to one of its futures, fails as a
// dead letter instead of reaching an actor or future of the new one. (Only
// a clock set back by more than the old process's lifetime could break
// this.) Names chosen with SpawnNamed are the user's: a named actor of the
// new process does get the messages sent to its name.
//
// # Supervision
//
// A panic in Receive is recovered: the actor is suspended and its parent's
// SupervisorStrategy (the system's, for top-level actors) decides to Resume,
// Restart, Stop or Escalate. OneForOneStrategy, AllForOneStrategy and
// ExponentialBackoffStrategy are provided; decisions are published as
// SupervisorEvent. A restart gives the failed instance *Restarting, stops
// the actor's children and then produces a fresh instance, which receives
// *Started. What arrives in between waits for the fresh instance, after its
// Started: user messages, and the *Terminated of actors it watches (watches
// outlive a restart; the Terminated of the children the restart stopped go
// to the old instance).
//
// If the producer panics or returns nil when the actor restarts, the actor
// has no instance: it stays suspended and its supervisor decides again,
// with the recovered value (or an error) as reason. Resume cannot apply
// then and restarts the actor instead: OneForOneStrategy and
// AllForOneStrategy restart that actor only and count it against their
// restart limits, so a producer that keeps failing ends in Stop. (After an
// Escalate, a Resume decided higher up retries the producer without
// counting: a strategy that escalates such failures must bound them
// itself.)
//
// # Lifecycle
//
// An actor receives *Started first; when stopped it receives *Stopping, its
// children stop, then *Stopped, and every watcher gets *Terminated. Stop
// stops after the current message; Poison after the messages already sent;
// StopAndWait and PoisonAndWait wait for the end. System.Shutdown stops
// everything.
package actor
