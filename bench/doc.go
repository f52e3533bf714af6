// Package bench measures Troupe side by side with
// github.com/asynkron/protoactor-go. Each scenario has a Troupe and a
// protoactor-go implementation of the same shape; cmd/troupe-bench runs the
// two sides interleaved and prints the medians as a table, and
// BenchmarkScenarios exposes them to `go test -bench` for profiling.
//
// The local scenarios run in the benchmark's own process. The others start
// the benchmark binary again as a child process (see RunChildIfAsked): the
// remote scenarios serve their second node from a child, and each side of a
// cluster scenario runs its whole in-process cluster in a child, because
// protoactor-go's cluster leaves goroutines and memory behind after
// shutdown.
//
// `go test -cpuprofile` profiles only the parent process. To profile the
// children too, set TROUPE_BENCH_CHILD_CPUPROFILE to a path prefix: each
// child writes its CPU profile to PREFIX.ROLE.prof, where ROLE names what
// it played (node2-troupe, cluster-handover-protoactor, …); a later child
// of the same role overwrites the file, so run one scenario (-only) once
// (-runs 1).
//
// To see where a round trip spends its time, set TROUPE_BENCH_TRACE to a
// directory (made if missing) and run one latency scenario once. The requesting process
// writes an execution trace of its measured requests to DIR/KEY-SIDE.trace
// (remote-request-troupe.trace, …), with a log event at the start and end
// of each request, and each child process writes one of its whole life to
// DIR/ROLE.trace (node2-troupe.trace, cluster-request-grpc.trace, …).
// tools/cmd/tracestages merges the traces of a scenario's processes on
// their shared monotonic clock and prints what each process did during the
// median request (or the requests at another quantile, with -q). Tracing slows every process down, so take figures from
// untraced runs.
package bench
