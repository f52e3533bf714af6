// Package remote connects actor systems over gRPC, so that a PID with
// another system's address is used exactly like a local one: Send, Request,
// Watch and Stop reach the actor wherever it lives.
//
//	r, _ := remote.New(sys, remote.Config{BindAddress: "0.0.0.0:8090", AdvertisedAddress: "10.0.0.5:8090"})
//	r.Start()
//	defer r.Shutdown(ctx)
//	reply, err := sys.Request(ctx, actor.NewPID("10.0.0.6:8090", "greeter"), &pb.Hello{})
//
// # Wire protocol
//
// Each system serves troupe.remote.v1.RemotingService (see
// proto/troupe/remote/v1/remote.proto). To send to a peer, a system dials
// it and opens one stream, unless the peer has opened one to it: a stream
// carries messages both ways, so two systems need one connection, replies
// come back on the caller's own stream, and a system nobody can dial (a
// client behind a firewall) still gets answers. The first frame is a Hello
// carrying the cluster name, member id and the dialer's size limits; a
// peer of another cluster is refused on both sides with ErrClusterMismatch.
// Messages then travel in batches: each frame holds up to BatchSize
// messages, with type names, target ids and senders stored once per frame.
// Two systems that start sending at the same moment may each open a
// stream; each then writes on its own and reads both.
//
// # Serialization
//
// Protobuf messages (google.golang.org/protobuf) travel under their full
// names and are found on arrival in protoregistry.GlobalTypes. Other types
// can travel as JSON once registered on both sides with JSON().Register, or
// through a Serializer of your own (Serializers().Register); implement Sizer
// to have messages marshalled straight into the frame, and TypeDecoder to
// have the receiver look each type up once per stream (both built-in
// serializers do). A message no
// serializer accepts fails at send time: it goes to dead letters with
// ErrUnknownType naming its type, and a requester gets that error at once.
// Serializers().Check makes the same test without sending, for a caller
// that must hear of the failure (a fire-and-forget send does not).
// Messages larger than MaxMessageSize (the smaller of both sides' limits)
// fail the same way with ErrMessageTooLarge; the connection stays up.
//
// # Delivery and back-pressure
//
// Messages from one sender to one actor arrive in order. Each peer has a
// send queue of SendQueueSize messages; when it is full, senders wait up to
// QueueFullTimeout for room, then the message goes to dead letters with
// ErrQueueFull. Delivery is at most once: messages in a frame that could
// not be written go to dead letters, but a frame gRPC took and a broken
// connection lost is gone without one: ConnectionLost (or PeerRestarted)
// says when that may have happened, and a requester waiting for its
// answer otherwise waits until its context ends (the cluster's calls fail
// over on either event). A request to an actor that does not exist on the
// peer fails at once with actor.ErrDeadLetter.
//
// # Failures
//
// A connection is made on the first message to a peer, and re-made after
// failures with exponential backoff (ReconnectBackoff up to
// MaxReconnectBackoff). When a peer stays unreachable for ReconnectTimeout,
// refuses us, or says it is leaving, its endpoint terminates: queued
// messages go to dead letters, EndpointTerminated is published on the event
// stream, and every local watcher of the peer's actors receives Terminated
// with reason AddressTerminated. A peer that comes back within
// ReconnectTimeout keeps its endpoint. A connection that breaks without a
// goodbye publishes ConnectionLost: what it carried may be lost, both
// ways, without a dead letter. After a reconnect, the endpoint
// first sends a Watch for every watch of the peer's actors it holds: a
// Watch in a frame lost with the old connection would otherwise never
// reach the peer, whose actor's end its watcher would never hear of (a
// Watch the peer has is harmless, as a watcher watches once; one for an
// actor that ended meanwhile is answered with Terminated). If the peer
// comes back as another process (another MemberID in the handshake), the
// actors watched there died with the old one, and their watchers receive
// AddressTerminated all the same;
// PeerRestarted is published, since what the old connection carried (a
// request written on it as the old process died, an answer the old process
// owed) may be lost without a dead letter. A Watch (or Unwatch) still
// queued for the old process is not sent on to the new one: its watcher
// has had its one Terminated, and the new process keeps no watch nobody
// asked of it. The other way round, the old process's watches of this
// system's actors end with it: their end is not reported to the new
// process, which never asked for it.
// Messages flow on to the new process: those for an actor of the old one
// by generated id (or for one of its futures) fail there as dead letters,
// since a new system never makes an id an older one made; those for a
// named actor reach the new actor of that name.
// Each watch ends with one Terminated: once AddressTerminated (or an
// Unwatch) has ended it, a Terminated the peer still sends for it, as a
// peer given up on while still running does, is dropped.
// Keepalive pings (KeepaliveInterval, KeepaliveTimeout) detect connections
// that died silently.
//
// # Security
//
// Set ServerTLS and ClientTLS for TLS; require and verify client
// certificates in ServerTLS (tls.RequireAndVerifyClientCert) for mutual
// TLS, where a peer without a valid certificate cannot connect. Start
// warns about the modes between the two, which ask for a certificate but
// accept a dialer without a verified one. Under mutual TLS a dialer's
// certificate must also be valid for the host of the address it
// advertises, just as a listener's must be for the address dialed, so
// that a peer can speak only
// for its own address: receive what is sent to it, and say that it leaves.
// A dialer refused for that fails with ErrAddressNotCertified. Clusters
// whose members share one certificate naming none of their addresses set
// TrustClaimedAddresses.
//
// With or without TLS, a peer reports the end (Terminated) of its own
// actors only, and watches (Watch, Unwatch) for its own actors only: one
// about another address's actor is dropped as a dead letter with
// ErrProtocol, so a member cannot end or cancel the watches of another
// member's actors. A system message that lacks the PID it must carry (a
// Watch without its watcher, …) is a dead letter with actor.ErrNilPID, not
// a failure of its target.
//
// # Remote spawn and shutdown
//
// Register a kind's props; other systems start actors of it with Spawn or
// SpawnNamed. Shutdown tells peers this system is leaving, flushes what is
// queued for them within its context, and stops the server.
package remote
