package remote

import (
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/troupehq/troupe/sdk/internal/conf"
)

// frameMargin is the room a frame keeps, beyond one message of
// MaxMessageSize, for what surrounds a message: its envelope's fields and
// the entries it adds to the frame's tables (type name, target id,
// sender). The writer stops filling a frame once it holds MaxFrameSize -
// MaxMessageSize - frameMargin bytes, so that the last message still fits
// under MaxFrameSize, which gRPC enforces on both sides (a frame over it
// would cost the connection). Hence MaxFrameSize must exceed
// MaxMessageSize by at least this much.
const frameMargin = 64 << 10

// frameSlack is how much MaxFrameSize exceeds MaxMessageSize by default:
// room for a full-size message and many small ones in one frame.
const frameSlack = 1 << 20

// Config configures a Remote. Zero fields take the defaults documented on
// each field (see DefaultConfig); New rejects invalid values with an error
// that names every bad field.
type Config struct {
	// BindAddress is the host:port the gRPC server listens on. Default
	// "127.0.0.1:0": an ephemeral loopback port.
	BindAddress string
	// AdvertisedAddress is the host:port peers dial to reach this system,
	// and the address in its PIDs (Remote.Address). Default: the address
	// the listener bound (Remote.ListenAddress).
	AdvertisedAddress string
	// ClusterName is exchanged in the handshake: systems of different
	// clusters refuse each other. Default "troupe".
	ClusterName string
	// MemberID identifies this system in handshakes and logs: one id per
	// process lifetime. A peer that reconnects under another id is taken
	// for a restarted process, and watchers of actors at its address get
	// Terminated with AddressTerminated. Default: 16 random hex characters.
	MemberID string

	// SendQueueSize bounds the messages queued for one peer (rounded up to
	// a power of two). Default 8192. The queue is one ring of this many
	// 64-byte slots, made with the peer's endpoint (512 KiB at the
	// default), so a member that talks to many peers may want it smaller.
	SendQueueSize int
	// QueueFullTimeout is how long a sender waits for room in a full send
	// queue before its message goes to dead letters with ErrQueueFull; a
	// negative value means do not wait. Default 5s. This is the
	// back-pressure policy: senders slow down to the speed of the network.
	QueueFullTimeout time.Duration
	// BatchSize caps the messages in one frame. Default 1024.
	BatchSize int
	// MaxMessageSize caps one serialized message, its header included,
	// sent or received; a sender also counts the type name, target id and
	// sender PID that travel with it. Default 4 MiB.
	MaxMessageSize int
	// MaxFrameSize caps one frame (a batch of messages). It must exceed
	// MaxMessageSize by at least 64 KiB. Default MaxMessageSize + 1 MiB
	// (5 MiB with the default MaxMessageSize).
	MaxFrameSize int
	// FlowControlWindow is the HTTP/2 flow-control window of a connection
	// and of its stream, in bytes: how much a peer may send ahead of what
	// we have read. A fixed window turns off gRPC's bandwidth-probing
	// pings, which would otherwise cost a round of system calls for each
	// request at low rates. From 64 KiB to 1 GiB. Default 4 MiB.
	FlowControlWindow int

	// DialTimeout bounds connecting to a peer. Default 5s. gRPC connects
	// when the stream opens, so a dialer bounds connecting and its
	// handshake together, by DialTimeout+HandshakeTimeout.
	DialTimeout time.Duration
	// HandshakeTimeout bounds the Hello/Welcome exchange, on both sides
	// (on the dialer's, together with DialTimeout). Default 5s.
	HandshakeTimeout time.Duration
	// ReconnectBackoff is the first wait after a failed connection
	// attempt; each failure doubles it, up to MaxReconnectBackoff. Defaults
	// 50ms and 2s.
	ReconnectBackoff    time.Duration
	MaxReconnectBackoff time.Duration
	// ReconnectTimeout is how long an endpoint keeps trying to (re)connect
	// before it terminates: queued messages go to dead letters and watchers
	// of the peer's actors get Terminated with AddressTerminated. Default 10s.
	ReconnectTimeout time.Duration
	// KeepaliveInterval and KeepaliveTimeout detect dead connections: a
	// ping after KeepaliveInterval without traffic, the connection closed
	// when no answer comes within KeepaliveTimeout. Defaults 10s and 5s.
	// gRPC raises a dialer's interval below 10s to 10s: a shorter one
	// applies to the connections peers open to this system only.
	KeepaliveInterval time.Duration
	KeepaliveTimeout  time.Duration

	// ServerTLS, if set, serves TLS; set ClientAuth to
	// tls.RequireAndVerifyClientCert (and ClientCAs) for mutual TLS. Under
	// mutual TLS a dialer's certificate must be valid for the host of the
	// address it advertises, as a listener's must be for the address
	// dialed: a peer speaks only for its own address (messages to it,
	// watches of its actors, and its goodbye, which terminates them).
	// With a weaker ClientAuth, a dialer without a verified certificate
	// is believed about its address, as without TLS (Start logs a
	// warning for the modes that ask for a certificate but accept one
	// that is missing or unverified).
	ServerTLS *tls.Config
	// ClientTLS, if set, dials peers with TLS (with Certificates for mutual
	// TLS). Peers must agree: a TLS dialer cannot reach a plain listener.
	ClientTLS *tls.Config
	// TrustClaimedAddresses turns that check off, for clusters whose
	// members share one certificate that names none of their addresses.
	// Default false.
	TrustClaimedAddresses bool

	// Metrics receives transport measurements. Default: none.
	Metrics Metrics
}

// DefaultConfig returns the values used for zero fields, but for two: a
// zero MemberID is random per Remote, and a zero MaxFrameSize is
// MaxMessageSize + 1 MiB, whatever MaxMessageSize is (so raising
// MaxMessageSize on this Config needs MaxFrameSize raised or zeroed too).
func DefaultConfig() Config {
	const maxMessageSize = 4 << 20
	return Config{
		BindAddress:         "127.0.0.1:0",
		ClusterName:         "troupe",
		SendQueueSize:       8192,
		QueueFullTimeout:    5 * time.Second,
		BatchSize:           1024,
		MaxMessageSize:      maxMessageSize,
		MaxFrameSize:        maxMessageSize + frameSlack,
		FlowControlWindow:   4 << 20,
		DialTimeout:         5 * time.Second,
		HandshakeTimeout:    5 * time.Second,
		ReconnectBackoff:    50 * time.Millisecond,
		MaxReconnectBackoff: 2 * time.Second,
		ReconnectTimeout:    10 * time.Second,
		KeepaliveInterval:   10 * time.Second,
		KeepaliveTimeout:    5 * time.Second,
		Metrics:             NopMetrics{},
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	conf.Default(&c.BindAddress, d.BindAddress)
	conf.Default(&c.ClusterName, d.ClusterName)
	if c.MemberID == "" {
		var b [8]byte
		_, _ = rand.Read(b[:])
		c.MemberID = hex.EncodeToString(b[:])
	}
	conf.Default(&c.SendQueueSize, d.SendQueueSize)
	conf.Default(&c.BatchSize, d.BatchSize)
	conf.Default(&c.MaxMessageSize, d.MaxMessageSize)
	conf.Default(&c.MaxFrameSize, c.MaxMessageSize+frameSlack)
	conf.Default(&c.FlowControlWindow, d.FlowControlWindow)
	conf.Default(&c.QueueFullTimeout, d.QueueFullTimeout)
	conf.Default(&c.DialTimeout, d.DialTimeout)
	conf.Default(&c.HandshakeTimeout, d.HandshakeTimeout)
	conf.Default(&c.ReconnectBackoff, d.ReconnectBackoff)
	conf.Default(&c.MaxReconnectBackoff, d.MaxReconnectBackoff)
	conf.Default(&c.ReconnectTimeout, d.ReconnectTimeout)
	conf.Default(&c.KeepaliveInterval, d.KeepaliveInterval)
	conf.Default(&c.KeepaliveTimeout, d.KeepaliveTimeout)
	conf.Default(&c.Metrics, d.Metrics)

	var errs []error
	if _, _, err := net.SplitHostPort(c.BindAddress); err != nil {
		errs = append(errs, fmt.Errorf("BindAddress %q: %w", c.BindAddress, err))
	}
	if c.AdvertisedAddress != "" {
		if _, _, err := net.SplitHostPort(c.AdvertisedAddress); err != nil {
			errs = append(errs, fmt.Errorf("AdvertisedAddress %q: %w", c.AdvertisedAddress, err))
		}
	}
	errs = append(errs,
		conf.NotNegative("SendQueueSize", c.SendQueueSize),
		conf.NotNegative("BatchSize", c.BatchSize),
		conf.NotNegative("MaxMessageSize", c.MaxMessageSize))
	if c.MaxFrameSize < c.MaxMessageSize+frameMargin {
		errs = append(errs, fmt.Errorf("MaxFrameSize (%d) must exceed MaxMessageSize (%d) by at least %d KiB", c.MaxFrameSize, c.MaxMessageSize, frameMargin>>10))
	}
	if c.FlowControlWindow < 64<<10 || c.FlowControlWindow > 1<<30 {
		errs = append(errs, fmt.Errorf("FlowControlWindow must be from 64 KiB to 1 GiB, got %d", c.FlowControlWindow))
	}
	errs = append(errs,
		conf.NotNegative("DialTimeout", c.DialTimeout),
		conf.NotNegative("HandshakeTimeout", c.HandshakeTimeout),
		conf.NotNegative("ReconnectBackoff", c.ReconnectBackoff),
		conf.NotNegative("MaxReconnectBackoff", c.MaxReconnectBackoff),
		conf.NotNegative("ReconnectTimeout", c.ReconnectTimeout),
		conf.NotNegative("KeepaliveInterval", c.KeepaliveInterval),
		conf.NotNegative("KeepaliveTimeout", c.KeepaliveTimeout))
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("remote: invalid config: %w", err)
	}
	return c, nil
}
