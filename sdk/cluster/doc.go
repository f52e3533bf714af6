// Package cluster runs virtual actors — grains — across a cluster of actor
// systems, in the manner of Microsoft Orleans and Proto.Actor's cluster.
//
// A grain is named by a ClusterIdentity{Kind, ID} and always exists: the
// first message activates it on some member, an idle activation passivates
// after its kind's IdleTimeout, and the next message activates it again.
// Callers never hold its location; they call by identity:
//
//	c, _ := cluster.New(sys, r, cluster.Config{
//		Membership: membership, // a Membership implementation
//		Kinds:      []cluster.Kind{{Name: "player", Props: playerProps, IdleTimeout: 10 * time.Minute}},
//	})
//	c.Start(ctx)
//	reply, err := c.Request(ctx, cluster.ClusterIdentity{Kind: "player", ID: "42"}, &pb.GetScore{})
//
// # Membership and topology
//
// A Membership (pluggable: clustertest's Registry in tests) delivers
// complete member sets. The member list turns them into Topology events on
// the actor system's event stream: members are told apart by incarnation
// ID, never by address, and a member that left does not come back under
// the same ID (the last MaxDepartedMembers that left are remembered). Each
// topology has a Hash that members seeing the same set share.
//
// A member the membership drops while it still runs (a failure detector
// declared it dead) is expelled: its grains start again elsewhere, so when
// it sees itself dropped, or when the other members find it listed again
// and tell it to go, it publishes Expelled and closes. Otherwise members
// that saw it leave would refuse it while newer ones took it in, and the
// two would never agree on a topology. A process that should go on serving
// restarts under a new member ID.
//
// # Ownership
//
// Every identity has one owner: the rendezvous-hash winner among the
// members hosting its kind. The owner records where the identity's
// activation lives, and asking it returns that activation or starts one
// (on the owner itself, unless the kind's Placement chooses another
// member: a request to place it there names that member, and another
// process at its address, one restarted there under a new member ID,
// refuses it). Requests to an owner carry the caller's topology hash: an
// owner that sees another topology answers "mismatch" and the caller
// retries once the views agree, so that two members never both act as
// owner.
//
// # Handover
//
// Activations never move; ownership does. When the topology changes, each
// member reports to the new owners the activations it hosts whose owner
// changed (only those; in as many messages as keep each under half the
// remote's MaxMessageSize), then tells every member it is done. A new owner
// answers for an identity that moved to it — in this topology or in any
// other it adopted since its last completed handover — once it has an
// entry for it, or once every member is done, or, failing that, after
// HandoverTimeout (reported to Metrics). A member's "done" names the
// member it is for (another process at that member's address ignores it)
// and the topology the sender adopted before: its reports complete an owner's table only if
// the owner came from the same one. Membership may merge changes, so a
// member that joins and leaves at once can go unseen by some members, and
// those that saw it no longer know the grains it owned for a moment; when
// two members came from different topologies, each sends the other a full
// report of the activations the other owns, and only that counts as done
// (for the topologies that follow too: a member whose full report we lack
// is asked again with each completion it sends). Each handover message
// carries its sender's count of those it sent the receiver: a count that
// skips says some were lost (with a broken connection, as dead letters, or
// on a connection to an address whose process had died when the sender
// wrote there, while another runs there now): the receiver then asks the
// sender for a full report, and counts no completion of its, whatever
// topology it is for, until one arrives whole. A member whose connection
// to another broke (remote.ConnectionLost), or that finds a new process at
// its address (remote.PeerRestarted), sends it its completion again, never
// as a full one, and asks again for a full report it still waits for: if
// the first completion, the last message it sent there, was lost, the
// other would wait for it until HandoverTimeout. An owner
// keeps the entries it dropped when their identities moved away until a
// handover completes, and takes them back if they move back (A→B→A): their hosts
// may have seen no change. Owners forget the activations of members that
// left at once, and calls waiting on such a member fail over at once; so
// do calls waiting on a member whose process was restarted at its address
// (remote.PeerRestarted: a new member ID there), since what was sent to the
// old process or owed by it is lost, while the membership may still list
// the old member or have dropped it already. A caller whose request to an
// activation comes back "no such process" names it to the owner, which
// then starts a new activation instead of answering with the gone one: an
// owner's table can outlive an activation when the host's notice went to
// another owner (their views of the topology differed) or is still on its
// way. Activation names ("kind/id#n") never repeat from one process to
// the next at an address: n counts on from the wall clock, so a PID of an
// activation of a process restarted there, which callers may still cache
// or name as gone, is never taken for an activation of the new process.
//
// # Calls
//
// Request and Send find the activation in a per-member cache (of at most
// PIDCacheSize entries). On a miss, Send asks the owner where the
// activation is (as Get does), then sends; Request sends its message to
// the owner (with the grain and topology hash in reserved
// "troupe-cluster-" header entries), which delivers it to the activation —
// starting one if needed — so that the answer comes straight from the
// grain, one network hop fewer, and tells the caller's member where the
// activation lives for its next calls. Failures of transport or ownership
// are retried with exponential backoff (RetryBackoff, MaxRetryBackoff)
// until the call's context ends, except for a message no transport can
// carry (remote.ErrUnknownType, remote.ErrMessageTooLarge), which fails
// the call at once (Send, which cannot see a failure after its message
// left, checks for a serializer before sending to another member, so an
// unknown type fails it too); a grain's answer that is a *GrainError is
// returned as the error, never retried, and errors.Is / errors.As match
// it. A call waiting on an answer that may have been lost with a member
// or its connection fails over at once and is retried (ErrMemberLeft):
// when the member leaves, when its process is restarted at its address,
// and when the connection to it breaks without a goodbye
// (remote.ConnectionLost: a network failure, a keepalive timeout) and is
// made again. A retry may run a request a second time, since the member
// may have got it, and answered, before the answer was lost: make
// requests that must not run twice idempotent. (An answer the member
// writes on the broken connection before it notices the break is lost
// too, unannounced: a retry's answer lost so is waited for until the
// call's context ends.) The cache forgets an entry when a call finds the
// activation gone, when its member leaves, and when it passivates on this
// member; a fire-and-forget message that reaches a passivated activation
// is rerouted by its host to the grain's new one, within PlacementTimeout
// (not while the host itself shuts down: it has left the membership and
// no longer knows the owners, so such a message goes to dead letters).
//
// # Clients and shutdown
//
// A member without kinds is a client: it calls grains but never owns or
// hosts them. Shutdown leaves in phases within its context: deregister,
// stop taking activations, passivate the hosted activations (running their
// Terminate hooks: *actor.Stopping), flush the remote, stop. Requests in
// flight to the leaving member are answered or fail over by retry.
package cluster
