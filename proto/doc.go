// Package proto is the root of the Go module that will hold the code
// generated from the services' schemas (none yet). The schemas of the SDK's
// own wire types live in this buf module too but generate into the sdk
// module (package actor's PID and system messages, the remote protocol, the
// cluster's grain and identity messages), because dependencies point one
// way: services → proto → sdk. The benchmarks' messages generate into the
// bench module.
//
// Regenerate everything with `make proto`; `make lint` fails when the
// committed code is stale.
package proto
