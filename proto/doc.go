// Package proto is the root of the Go module that holds the code generated
// from Troupe's service schemas (for example pingpong/v1). The schemas of
// the SDK's own wire types live beside them in this buf module but generate
// into the sdk module (package actor's PID and system messages), because
// dependencies point one way: services → proto → sdk.
//
// Regenerate everything with `make proto`; `make lint` fails when the
// committed code is stale.
package proto
