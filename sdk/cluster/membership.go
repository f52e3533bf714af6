package cluster

import "context"

// Membership tells a member who the members of its cluster are. It is the
// cluster's pluggable source of truth: clustertest has an implementation
// in memory, and an implementation backed by a service registry plugs in
// the same way.
type Membership interface {
	// Join starts taking part. A member (self has kinds) is registered; a
	// client (asClient) is not, but still learns the members. The
	// implementation calls onChange with each new complete member set,
	// starting with the current one, from one goroutine at a time, until
	// Leave; a failure to reach the source of truth means "no change",
	// never "no members".
	Join(ctx context.Context, self Member, asClient bool, onChange func(members []Member)) error
	// Leave deregisters the member and stops the updates.
	Leave(ctx context.Context) error
}
