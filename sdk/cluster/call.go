package cluster

import (
	"errors"
	"fmt"
	"maps"
	"strconv"

	"github.com/troupehq/troupe/sdk/actor"
)

// A grain call whose caller does not know the activation goes to the
// identity's owner as the caller's own message with these headers added,
// naming the grain and the topology the caller computed the owner with.
// The owner delivers it to the activation (starting one if needed), so the
// answer comes straight back from the grain, and tells the caller's member
// where the activation lives (ActivationLocated, to its cache process). A
// call the owner cannot deliver gets an ActivationResponse saying why
// instead, which the caller retries like a failed activation request.
const (
	headerKind     = "troupe-cluster-kind"
	headerID       = "troupe-cluster-id"
	headerTopology = "troupe-cluster-topology"
)

var errNotGrainCall = errors.New("cluster: the identity actor takes only cluster messages and grain calls")

// formatHash formats a topology hash for the headerTopology entry;
// grainCallOf parses it back.
func formatHash(hash uint64) string { return strconv.FormatUint(hash, 16) }

// grainCall wraps msg (which may be an *actor.Envelope with its own
// header) as a call to id through its owner in the topology whose hash
// formatHash formatted as hashHex.
func grainCall(id ClusterIdentity, hashHex string, msg any) *actor.Envelope {
	m, _, user := actor.Unwrap(msg)
	h := make(actor.Header, len(user)+3)
	maps.Copy(h, user)
	h[headerKind] = id.Kind
	h[headerID] = id.ID
	h[headerTopology] = hashHex
	return &actor.Envelope{Message: m, Header: h}
}

// grainCallOf reads the identity actor's current message as a grain call:
// the caller's message, its sender and the header it came with, less the
// call's own entries.
func grainCallOf(c actor.Context) (pending, error) {
	h := c.Header()
	kind, isCall := h[headerKind]
	if !isCall {
		return pending{}, fmt.Errorf("%w, not %T", errNotGrainCall, c.Message())
	}
	hash, err := strconv.ParseUint(h[headerTopology], 16, 64)
	if err != nil {
		return pending{}, fmt.Errorf("%w: bad %s header %q", errNotGrainCall, headerTopology, h[headerTopology])
	}
	var user actor.Header
	if len(h) > 3 {
		user = make(actor.Header, len(h)-3)
		for k, v := range h {
			if k != headerKind && k != headerID && k != headerTopology {
				user[k] = v
			}
		}
	}
	id := ClusterIdentity{Kind: kind, ID: h[headerID]}
	return pending{id: id, hash: hash, sender: c.Sender(),
		call: &actor.Envelope{Message: c.Message(), Sender: c.Sender(), Header: user}}, nil
}
