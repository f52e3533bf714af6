package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/cluster/internal/clusterpb"
)

// identityName is the name of every member's identity actor.
const identityName = "$cluster-identity"

// IdentityOf returns the identity of an activation's PID, or false if pid
// is not an activation.
func IdentityOf(pid *actor.PID) (ClusterIdentity, bool) {
	if pid == nil {
		return ClusterIdentity{}, false
	}
	name, ok := strings.CutPrefix(pid.Id, identityName+"/")
	if !ok {
		return ClusterIdentity{}, false
	}
	return parseGrainName(name)
}

// Messages local to a member.
type (
	// topologyChanged hands the identity actor a new topology.
	topologyChanged struct{ rt *routing }
	// handoverTimedOut fires HandoverTimeout after a topology change. It
	// names the topology by epoch, not hash: the member set can come back
	// to an earlier one (a member joins and leaves), and a timeout queued
	// for that earlier handover must not end the new one.
	handoverTimedOut struct{ epoch uint64 }
	// leaving makes the identity actor refuse activation requests; it
	// answers with the activations it hosts.
	leaving struct{}
	// connectionLost says that what was sent to address may have been
	// lost with a broken connection, or with a process that died there
	// (see completeAgain).
	connectionLost struct{ address string }
)

// pending is an activation request, or a grain call through the owner,
// waiting for an answer.
type pending struct {
	id     ClusterIdentity
	hash   uint64
	sender *actor.PID
	// gone is an activation of id the requester found gone, if any.
	gone *actor.PID
	// call, for a grain call, is the caller's message (its sender is
	// sender) to deliver to the activation.
	call *actor.Envelope
}

// identityActor is a member's owner and host of activations: it answers
// ActivationRequests for the identities the member owns, starts the
// activations placed on the member (as its children), and runs the
// handover protocol when the topology changes. All of it happens on this
// one actor, so the ownership state needs no locks.
type identityActor struct {
	c       *Cluster
	st      *ownerState
	rt      *routing
	next    uint64 // numbers activation names (see newIdentityActor)
	waiting []pending
	placing map[ClusterIdentity][]pending
	// unanswered is the host of each identity whose placement request got
	// no answer (PlacementTimeout passed): the host may still start the
	// activation, so the identity is placed there again, not wherever
	// the Placement would choose now, until the host answers.
	unanswered map[ClusterIdentity]string
	leaving    bool
	since      time.Time // when the current handover began
	timer      *time.Timer
}

// newIdentityActor returns the identity actor. The numbers of activation
// names ("kind/id#n") count on from the wall clock in nanoseconds, so that
// a process restarted at the same address never names an activation as
// the one before did: a PID of the old process's activation, which callers
// may still cache or name as gone, must not be taken for a new activation.
func (c *Cluster) newIdentityActor() actor.Actor {
	return &identityActor{c: c, st: newOwnerState(c.self.ID), next: uint64(time.Now().UnixNano()),
		placing: make(map[ClusterIdentity][]pending), unanswered: make(map[ClusterIdentity]string)}
}

func (a *identityActor) Receive(c actor.Context) {
	switch m := c.Message().(type) {
	case *actor.Started:
		// After a restart, pick up the topology the failed instance had.
		if rt := a.c.routing.Load(); rt != nil {
			a.adopt(c, rt)
		}
	case *topologyChanged:
		if m.rt != a.rt {
			a.adopt(c, m.rt)
		}
	case *clusterpb.ActivationRequest:
		a.activate(c, pending{id: identityOf(m.GetIdentity()), hash: m.GetTopologyHash(), sender: c.Sender(), gone: m.GetGone()})
	case *clusterpb.HandoverDelta:
		if !a.meantForUs(m.GetReceiverId(), m.GetMemberId(), m) {
			break
		}
		a.st.arrived(m.GetMemberId(), m.GetSequence())
		a.st.applyDelta(m.GetTopologyHash(), m.GetMemberId(), entriesOf(m.GetEntries()))
		a.retryWaiting(c)
	case *clusterpb.HandoverComplete:
		if !a.meantForUs(m.GetReceiverId(), m.GetMemberId(), m) {
			break
		}
		a.st.arrived(m.GetMemberId(), m.GetSequence())
		done := a.st.applyDone(m.GetTopologyHash(), markOf(m))
		a.sendOwed(c)
		if done {
			a.handoverDone(c, false)
		}
	case connectionLost:
		a.completeAgain(c, m.address)
	case handoverTimedOut:
		if a.rt != nil && m.epoch == a.rt.place.topo.Epoch && !a.st.complete {
			missing := a.st.forceComplete()
			a.c.logger.Warn("cluster: handover timed out", "timeout", a.c.cfg.HandoverTimeout, "missing", missing)
			a.handoverDone(c, true)
		}
	case *clusterpb.PlaceRequest:
		c.Respond(a.place(c, identityOf(m.GetIdentity()), m.GetTopologyHash(), m.GetMemberId()))
	case *clusterpb.Expelled:
		if m.GetMemberId() == a.c.self.ID {
			a.c.expel("the other members refuse it: it was listed again after it left")
		}
		c.Respond(m) // told (or the address is another member's now)
	case *clusterpb.ActivationTerminated:
		a.st.ownerForgets(identityOf(m.GetIdentity()), m.GetPid())
	case *actor.Terminated:
		a.hostStopped(c, m.Who)
	case *leaving:
		a.leaving = true
		for _, p := range a.waiting {
			a.answer(c, p, status(clusterpb.ActivationStatus_ACTIVATION_STATUS_UNAVAILABLE))
		}
		a.waiting = nil
		hosted := make([]*actor.PID, 0, len(a.st.hosted))
		for _, pid := range a.st.hosted {
			hosted = append(hosted, pid)
		}
		c.Respond(hosted)
	case *actor.Stopping:
		if a.timer != nil {
			a.timer.Stop()
		}
	case *actor.Stopped, *actor.Restarting:
	default:
		p, err := grainCallOf(c)
		if err != nil {
			a.c.sys.DeadLetter(c.Self(), &actor.Envelope{Message: m, Sender: c.Sender(), Header: c.Header()}, err)
			return
		}
		a.activate(c, p)
	}
}

// meantForUs reports whether a handover message from member, for member
// to (empty from older members: whoever gets it), is for this member. One
// for an earlier process at this address is ignored: what it says (a
// completion's flags, the count on either) holds for that process alone.
func (a *identityActor) meantForUs(to, from string, msg any) bool {
	if to != "" && to != a.c.self.ID {
		a.c.logger.Debug("cluster: ignored a handover message for another member", "for", to, "from", from, "type", fmt.Sprintf("%T", msg))
		return false
	}
	return true
}

func identityOf(id *clusterpb.Identity) ClusterIdentity {
	return ClusterIdentity{Kind: id.GetKind(), ID: id.GetId()}
}

func wireIdentity(id ClusterIdentity) *clusterpb.Identity {
	return &clusterpb.Identity{Kind: id.Kind, Id: id.ID}
}

func entriesOf(es []*clusterpb.HandoverEntry) []entry {
	out := make([]entry, 0, len(es))
	for _, e := range es {
		if e.GetIdentity() != nil && e.GetPid() != nil {
			out = append(out, entry{id: identityOf(e.GetIdentity()), pid: e.GetPid()})
		}
	}
	return out
}

// adopt switches to a new topology and runs this member's side of the
// handover: report moved activations to their new owners, then tell every
// member it is done.
func (a *identityActor) adopt(c actor.Context, rt *routing) {
	a.rt = rt
	deltas := a.st.adopt(rt.place)
	for id, host := range a.unanswered {
		if _, member := rt.place.topo.Member(host); !member {
			delete(a.unanswered, id)
		}
	}
	hash := rt.place.topo.Hash
	for owner, entries := range deltas {
		a.report(c, owner, hash, entries)
	}
	for _, m := range rt.place.topo.Members {
		if m.ID != a.c.self.ID {
			a.complete(c, m.ID, hash, a.st.markFor(m.ID))
		}
	}
	a.sendOwed(c)
	a.since = time.Now()
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	if a.st.complete {
		a.handoverDone(c, false)
		return
	}
	sys, self := a.c.sys, c.Self()
	epoch := rt.place.topo.Epoch
	a.timer = time.AfterFunc(a.c.cfg.HandoverTimeout, func() { sys.Send(self, handoverTimedOut{epoch: epoch}) })
	// Requests waiting for the previous topology get their answer now.
	a.retryWaiting(c)
}

// sendOwed sends the full reports and requests this member owes (see
// mark).
func (a *identityActor) sendOwed(c actor.Context) {
	if a.rt == nil {
		return
	}
	hash := a.rt.place.topo.Hash
	for _, o := range a.st.takeOwed() {
		if o.report {
			a.report(c, o.to, hash, o.entries)
		}
		a.complete(c, o.to, hash, o.mark)
	}
}

// completeAgain sends this member's completion of the current topology
// again to the members at address: if the first, the last handover message
// we sent them, was lost, they would wait for it until HandoverTimeout. If
// anything we sent was lost, the count on this one shows the gap, and the
// member asks for a full report; if not, it counts as the first did. A
// full report we asked them for is asked again, if we still wait for it.
func (a *identityActor) completeAgain(c actor.Context, address string) {
	if a.rt == nil {
		return
	}
	for _, m := range a.rt.place.topo.Members {
		if m.Address != address {
			continue
		}
		if mk, ok := a.st.again(m.ID); ok {
			a.complete(c, m.ID, a.rt.place.topo.Hash, mk)
		}
	}
	a.sendOwed(c)
}

// complete sends m, a mark of this member for topology hash, to member to.
func (a *identityActor) complete(c actor.Context, to string, hash uint64, m mark) {
	c.Send(a.rt.routes[to], &clusterpb.HandoverComplete{TopologyHash: hash, MemberId: m.member, PreviousHash: m.prev,
		Full: m.full, Reply: m.reply, Request: m.request, ReceiverId: to, Sequence: a.st.sequence(to)})
}

// markOf is the mark a HandoverComplete carries.
func markOf(m *clusterpb.HandoverComplete) mark {
	return mark{member: m.GetMemberId(), prev: m.GetPreviousHash(), full: m.GetFull(), reply: m.GetReply(), request: m.GetRequest()}
}

// report sends to member to entries, activations this member hosts whose
// owner to is, for topology hash: in one HandoverDelta, or in several if they
// would not fit under half the remote's MaxMessageSize (a delta too large
// to send would be lost, and its owner, counting the completion that
// follows, would start a second activation of each grain it named).
func (a *identityActor) report(c actor.Context, to string, hash uint64, entries []entry) {
	budget := a.c.remote.Config().MaxMessageSize / 2
	for {
		d := &clusterpb.HandoverDelta{TopologyHash: hash, MemberId: a.c.self.ID, ReceiverId: to}
		for size := 0; len(entries) > 0; entries = entries[1:] {
			we := &clusterpb.HandoverEntry{Identity: wireIdentity(entries[0].id), Pid: entries[0].pid}
			n := 1 + protowire.SizeBytes(proto.Size(we)) // field tag, length, entry
			if len(d.Entries) > 0 && size+n > budget {
				break
			}
			d.Entries = append(d.Entries, we)
			size += n
		}
		d.Sequence = a.st.sequence(to)
		c.Send(a.rt.routes[to], d)
		if len(entries) == 0 {
			return
		}
	}
}

func (a *identityActor) handoverDone(c actor.Context, timedOut bool) {
	if a.timer != nil {
		a.timer.Stop()
		a.timer = nil
	}
	a.c.cfg.Metrics.HandoverCompleted(time.Since(a.since), timedOut)
	a.retryWaiting(c)
}

func (a *identityActor) retryWaiting(c actor.Context) {
	waiting := a.waiting
	a.waiting = nil
	for _, p := range waiting {
		a.activate(c, p)
	}
}

// answer completes p: a grain call with an activation is delivered to it,
// and the caller's member learns where it lives; anything else gets resp,
// with this member's topology hash. resp may be shared by several answers:
// it is not modified.
func (a *identityActor) answer(c actor.Context, p pending, resp *clusterpb.ActivationResponse) {
	if p.call != nil && resp.GetStatus() == clusterpb.ActivationStatus_ACTIVATION_STATUS_OK {
		pid := resp.GetPid()
		c.Send(pid, p.call)
		a.located(c, p, pid)
		return
	}
	if p.sender == nil {
		return // a fire-and-forget activation request has nobody to tell
	}
	c.Send(p.sender, &clusterpb.ActivationResponse{Status: resp.GetStatus(), Pid: resp.GetPid(), Error: resp.GetError(), TopologyHash: a.st.hash()})
}

// located tells the member of p's caller where p's activation lives.
func (a *identityActor) located(c actor.Context, p pending, pid *actor.PID) {
	if p.sender == nil {
		return
	}
	if address := p.sender.Address; address == a.c.self.Address || address == actor.LocalAddress {
		a.c.remember(p.id, pid)
		return
	}
	c.Send(actor.NewPID(p.sender.Address, cacheName), &clusterpb.ActivationLocated{Identity: wireIdentity(p.id), Pid: pid})
}

func status(s clusterpb.ActivationStatus) *clusterpb.ActivationResponse {
	return &clusterpb.ActivationResponse{Status: s}
}

// found answers with an activation.
func found(pid *actor.PID) *clusterpb.ActivationResponse {
	return &clusterpb.ActivationResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_OK, Pid: pid}
}

// failed answers that the activation could not start.
func failed(why string) *clusterpb.ActivationResponse {
	return &clusterpb.ActivationResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_FAILED, Error: why}
}

// activate answers an activation request, starting the activation if the
// identity has none.
func (a *identityActor) activate(c actor.Context, p pending) {
	switch {
	case a.leaving:
		a.answer(c, p, status(clusterpb.ActivationStatus_ACTIVATION_STATUS_UNAVAILABLE))
		return
	case a.st.place == nil || p.hash != a.st.hash():
		a.answer(c, p, status(clusterpb.ActivationStatus_ACTIVATION_STATUS_TOPOLOGY_MISMATCH))
		return
	}
	owner, ok := a.st.place.owner(p.id)
	switch {
	case !ok:
		a.answer(c, p, status(clusterpb.ActivationStatus_ACTIVATION_STATUS_UNKNOWN_KIND))
		return
	case owner != a.c.self.ID:
		a.answer(c, p, status(clusterpb.ActivationStatus_ACTIVATION_STATUS_NOT_OWNER))
		return
	}
	if act, ok := a.st.owned[p.id]; ok {
		if !act.pid.Equal(p.gone) {
			a.answer(c, p, found(act.pid))
			return
		}
		// Its host said no such process: the notice that it stopped went
		// to another owner, or has not come yet.
		a.st.ownerForgets(p.id, act.pid)
	}
	if a.st.inFlux(p.id) {
		a.waiting = append(a.waiting, p) // its activation may still be reported
		return
	}
	if queue, busy := a.placing[p.id]; busy {
		a.placing[p.id] = append(queue, p)
		return
	}
	host := a.c.self.ID
	if asked, ok := a.unanswered[p.id]; ok { // adopt forgets hosts that left
		a.placeRemotely(c, p, asked)
		return
	}
	if k := a.c.kinds[p.id.Kind]; k != nil && k.Placement != nil {
		var err error
		if host, err = a.placeWith(k.Placement, p.id, owner); err != nil {
			a.answer(c, p, failed(err.Error()))
			return
		}
	}
	if host == a.c.self.ID {
		pid, err := a.spawn(c, p.id)
		if err != nil {
			a.answer(c, p, failed(err.Error()))
			return
		}
		a.answer(c, p, found(pid))
		return
	}
	a.placeRemotely(c, p, host)
}

// placeWith asks a kind's Placement where to start id. A Placement that
// panics fails this activation only: a panic here would restart the
// identity actor, which would lose the owner tables and stop every grain
// this member hosts (they are its children).
func (a *identityActor) placeWith(pl Placement, id ClusterIdentity, owner string) (host string, err error) {
	defer func() {
		if r := recover(); r != nil {
			a.c.logger.Error("cluster: placement panicked", "identity", id, "panic", r)
			err = fmt.Errorf("placement of %v panicked: %v", id, r)
		}
	}()
	return pl.Place(id, owner, a.hostsOf(id.Kind)), nil
}

func (a *identityActor) hostsOf(kind string) []Member {
	var out []Member
	for _, m := range a.st.place.topo.Members {
		if m.HasKind(kind) {
			out = append(out, m)
		}
	}
	return out
}

// placeRemotely asks host to start the activation; requests for the same
// identity wait for the answer. A host that cannot answer now (it sees
// another topology, is leaving, or does not answer in PlacementTimeout)
// makes the callers retry.
func (a *identityActor) placeRemotely(c actor.Context, p pending, host string) {
	route, ok := a.rt.routes[host]
	if !ok {
		a.answer(c, p, failed("placement chose "+host+", which is not a member"))
		return
	}
	a.placing[p.id] = []pending{p}
	req := &clusterpb.PlaceRequest{Identity: wireIdentity(p.id), TopologyHash: a.st.hash(), MemberId: host}
	f := c.RequestFuture(route, req, a.c.cfg.PlacementTimeout)
	c.ReenterAfter(f, func(res any, err error) {
		waiting := a.placing[p.id]
		delete(a.placing, p.id)
		resp := status(clusterpb.ActivationStatus_ACTIVATION_STATUS_UNAVAILABLE)
		if errors.Is(err, actor.ErrTimeout) {
			a.unanswered[p.id] = host
		} else {
			delete(a.unanswered, p.id)
		}
		if r, ok := res.(*clusterpb.PlaceResponse); ok && err == nil {
			resp = &clusterpb.ActivationResponse{Status: r.GetStatus(), Pid: r.GetPid(), Error: r.GetError()}
			if r.GetStatus() == clusterpb.ActivationStatus_ACTIVATION_STATUS_OK {
				a.st.record(entry{p.id, r.GetPid()}, host)
			}
		}
		for _, w := range waiting {
			a.answer(c, w, resp)
		}
	})
}

// place serves an owner's PlaceRequest made in the topology with hash,
// for the member of ID member: start the activation here. A request for
// another member (an earlier process at this address, which the owner's
// topology may still list) is refused: the owner would record the
// activation as that member's, and forget it when that member leaves.
func (a *identityActor) place(c actor.Context, id ClusterIdentity, hash uint64, member string) *clusterpb.PlaceResponse {
	if member != "" && member != a.c.self.ID {
		return &clusterpb.PlaceResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_UNAVAILABLE,
			Error: "placement for member " + member + " reached member " + a.c.self.ID}
	}
	if pid, ok := a.st.hosted[id]; ok {
		return &clusterpb.PlaceResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_OK, Pid: pid}
	}
	switch {
	case a.leaving:
		return &clusterpb.PlaceResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_UNAVAILABLE, Error: "the member is leaving"}
	case a.st.place == nil || hash != a.st.hash():
		return &clusterpb.PlaceResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_TOPOLOGY_MISMATCH, Error: "the host sees another topology"}
	}
	pid, err := a.spawn(c, id)
	if err != nil {
		return &clusterpb.PlaceResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_FAILED, Error: err.Error()}
	}
	return &clusterpb.PlaceResponse{Status: clusterpb.ActivationStatus_ACTIVATION_STATUS_OK, Pid: pid}
}

// spawn starts an activation on this member.
func (a *identityActor) spawn(c actor.Context, id ClusterIdentity) (*actor.PID, error) {
	k := a.c.kinds[id.Kind]
	if k == nil {
		return nil, ErrNoHost
	}
	a.next++
	pid, err := c.SpawnNamed(k.props, grainName(id, a.next))
	if err != nil {
		return nil, err
	}
	c.Watch(pid)
	a.st.hostStarted(id, pid)
	a.c.cfg.Metrics.Activated(id.Kind)
	return pid, nil
}

// hostStopped handles an activation of this member that stopped: its owner
// forgets it.
func (a *identityActor) hostStopped(c actor.Context, pid *actor.PID) {
	id, ok := IdentityOf(pid)
	if !ok {
		return
	}
	a.c.cache.evict(id, pid)
	owner, tell := a.st.hostStopped(id, pid)
	if tell {
		if route, ok := a.rt.routes[owner]; ok {
			c.Send(route, &clusterpb.ActivationTerminated{Identity: wireIdentity(id), Pid: pid})
		}
	}
	a.c.cfg.Metrics.Passivated(id.Kind)
}
