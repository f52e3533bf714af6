package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"time"
)

// A child process is the benchmark binary itself, told by these environment
// variables which role of childRoles to play, at which cluster sizes, and
// where to write its CPU profile (see the package documentation).
const (
	childEnv        = "TROUPE_BENCH_CHILD"
	childSizesEnv   = "TROUPE_BENCH_CHILD_SIZES"
	childProfileEnv = "TROUPE_BENCH_CHILD_CPUPROFILE"
)

// childRoles are what a child process can play, by name: the second node of
// a remote scenario (node2/RUNTIME, or node2/grpc for the bare transport's
// floor), which announces its address and serves until its stdin closes,
// or one side of a cluster scenario (KEY/RUNTIME, KEY/grpc for a floor),
// which prints its figures for inChild.
var childRoles = map[string]func() error{
	"node2/troupe":                   troupeNode2,
	"node2/protoactor":               protoNode2,
	"node2/grpc":                     floorNode2,
	"cluster-request/troupe":         clusterSide(clusterLatency(TroupeClusterRequest)),
	"cluster-request/protoactor":     clusterSide(clusterLatency(ProtoClusterRequest)),
	"cluster-request/grpc":           clusterSide(clusterLatency(FloorClusterRequest)),
	"cluster-activations/troupe":     clusterSide(clusterRate(TroupeClusterActivations)),
	"cluster-activations/protoactor": clusterSide(clusterRate(ProtoClusterActivations)),
	"cluster-handover/troupe":        clusterSide(clusterSeconds(TroupeClusterHandover)),
	"cluster-handover/protoactor":    clusterSide(clusterSeconds(ProtoClusterHandover)),
}

func clusterLatency(run func(ClusterConfig) (Latency, error)) func(ClusterConfig) ([]float64, error) {
	return func(cc ClusterConfig) ([]float64, error) {
		l, err := run(cc)
		return l.percentiles(), err
	}
}

// clusterRate turns the time to activate cc.Activations grains into a rate.
func clusterRate(run func(ClusterConfig) (time.Duration, error)) func(ClusterConfig) ([]float64, error) {
	return func(cc ClusterConfig) ([]float64, error) {
		d, err := run(cc)
		return []float64{float64(cc.Activations) / d.Seconds()}, err
	}
}

func clusterSeconds(run func(ClusterConfig) (time.Duration, error)) func(ClusterConfig) ([]float64, error) {
	return func(cc ClusterConfig) ([]float64, error) {
		d, err := run(cc)
		return []float64{d.Seconds()}, err
	}
}

// clusterSide is the role of one side of a cluster scenario: it runs run at
// the sizes in childSizesEnv and prints the figures as a "result" line.
func clusterSide(run func(ClusterConfig) ([]float64, error)) func() error {
	return func() error {
		var cc ClusterConfig
		if err := json.Unmarshal([]byte(os.Getenv(childSizesEnv)), &cc); err != nil {
			return err
		}
		figures, err := run(cc)
		if err != nil {
			return err
		}
		out, err := json.Marshal(figures)
		if err != nil {
			return err
		}
		fmt.Println("result", string(out))
		return nil
	}
}

// RunChildIfAsked plays the role the environment asks of a child process
// and exits; in any other process it returns at once. Call it first thing
// in main and TestMain.
func RunChildIfAsked() {
	role := os.Getenv(childEnv)
	if role == "" {
		return
	}
	if err := runChild(role); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func runChild(role string) error {
	run, ok := childRoles[role]
	if !ok {
		return fmt.Errorf("unknown child role %q", role)
	}
	if prefix := os.Getenv(childProfileEnv); prefix != "" {
		f, err := os.Create(prefix + "." + strings.ReplaceAll(role, "/", "-") + ".prof")
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	stop, err := startTrace(role)
	if err != nil {
		return err
	}
	if err := run(); err != nil {
		_ = stop()
		return err
	}
	return stop()
}

// selfCommand returns a command that runs the benchmark binary itself as a
// child playing role, with env added to this process's environment and
// stderr shared with it. The -test.run flag keeps a test binary from
// running its tests should it get past TestMain's RunChildIfAsked;
// cmd/troupe-bench never parses its flags in a child.
func selfCommand(role string, env ...string) (*exec.Cmd, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(append(os.Environ(), childEnv+"="+role), env...)
	cmd.Stderr = os.Stderr
	return cmd, nil
}

// inChild plays role (one side of a cluster scenario) in a child process at
// the sizes cc and returns its figures.
func inChild(role string, cc ClusterConfig) ([]float64, error) {
	sizes, err := json.Marshal(cc)
	if err != nil {
		return nil, err
	}
	cmd, err := selfCommand(role, childSizesEnv+"="+string(sizes))
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	var figures []float64
	var childErr error
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "result "):
			childErr = json.Unmarshal([]byte(strings.TrimPrefix(line, "result ")), &figures)
		case strings.HasPrefix(line, "error: "):
			childErr = fmt.Errorf("%s: %s", role, strings.TrimPrefix(line, "error: "))
		}
	}
	if err := cmd.Wait(); err != nil && childErr == nil {
		childErr = fmt.Errorf("%s: %w", role, err)
	}
	if childErr == nil && figures == nil {
		childErr = fmt.Errorf("%s: no result", role)
	}
	return figures, childErr
}
