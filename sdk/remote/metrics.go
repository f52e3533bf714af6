package remote

// Metrics receives measurements of the transport, per peer address. Calls
// are made per batch, not per message, from the transport's goroutines;
// implementations must be fast and safe for concurrent use.
type Metrics interface {
	// BatchSent reports a frame of messages written to a peer.
	BatchSent(address string, messages, bytes int)
	// BatchReceived reports a frame of messages read from a peer.
	BatchReceived(address string, messages, bytes int)
	// QueueDepth reports the messages still queued for a peer after a
	// frame was written.
	QueueDepth(address string, depth int)
	// Reconnected reports a connection to a peer re-established after a
	// failure.
	Reconnected(address string)
	// EndpointTerminated reports an endpoint that gave up on its peer.
	EndpointTerminated(address string)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

// BatchSent does nothing.
func (NopMetrics) BatchSent(string, int, int) {}

// BatchReceived does nothing.
func (NopMetrics) BatchReceived(string, int, int) {}

// QueueDepth does nothing.
func (NopMetrics) QueueDepth(string, int) {}

// Reconnected does nothing.
func (NopMetrics) Reconnected(string) {}

// EndpointTerminated does nothing.
func (NopMetrics) EndpointTerminated(string) {}
