package remote

import (
	"errors"
	"fmt"
)

// Errors of the remote transport. Undeliverable messages go to dead letters
// with one of these as the reason; a local requester's error matches both
// actor.ErrDeadLetter and the reason with errors.Is. Across the network
// only the reason's text travels.
var (
	// ErrUnknownType: no serializer handles the message's type (on the
	// sender), or the receiver does not know the type name.
	ErrUnknownType = errors.New("remote: unknown message type")
	// ErrMessageTooLarge: the serialized message with its header (and, when
	// sending, its type name, target id and sender) exceeds MaxMessageSize,
	// of the sender or of the receiver.
	ErrMessageTooLarge = errors.New("remote: message too large")
	// ErrQueueFull: the peer's send queue stayed full for QueueFullTimeout.
	ErrQueueFull = errors.New("remote: send queue full")
	// ErrEndpointTerminated: the connection to the peer is gone for good (it
	// stayed unreachable for ReconnectTimeout, refused us, or left).
	ErrEndpointTerminated = errors.New("remote: endpoint terminated")
	// ErrClusterMismatch: the peer belongs to another cluster.
	ErrClusterMismatch = errors.New("remote: cluster name mismatch")
	// ErrAddressNotCertified: under mutual TLS, the peer refused us because
	// our client certificate is not valid for the host of the address we
	// advertise (see Config.TrustClaimedAddresses).
	ErrAddressNotCertified = errors.New("remote: certificate not valid for the advertised address")
	// ErrProtocol: the peer broke the protocol (a malformed frame, a wrong
	// handshake, an unsupported version).
	ErrProtocol = errors.New("remote: protocol error")
	// ErrShutdown: the remote transport is shutting down or shut down.
	ErrShutdown = errors.New("remote: shut down")
	// ErrUnknownKind: remote spawn of a kind the target did not register.
	ErrUnknownKind = errors.New("remote: unknown kind")
)

// endpointTerminated returns an error matching ErrEndpointTerminated about
// the peer at address, with why after it unless empty.
func endpointTerminated(address, why string) error {
	if why == "" {
		return fmt.Errorf("%w: %s", ErrEndpointTerminated, address)
	}
	return fmt.Errorf("%w: %s: %s", ErrEndpointTerminated, address, why)
}
