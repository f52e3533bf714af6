package actor

// Process receives messages addressed to a PID. Actors, futures and dead
// letters are processes; the remote transport registers processes that
// forward to other systems. Implementations must be safe for concurrent use
// and must not block.
type Process interface {
	// SendUserMessage delivers an application message (possibly an
	// *Envelope).
	SendUserMessage(pid *PID, message any)
	// SendSystemMessage delivers a runtime message (Watch, Stop, ...), which
	// overtakes application messages.
	SendSystemMessage(pid *PID, message any)
	// Stop stops the process.
	Stop(pid *PID)
}
