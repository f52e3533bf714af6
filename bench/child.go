package bench

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// Some scenarios run each side in a child process of their own: the
// benchmark binary itself, told by these environment variables which
// function to run with which sizes. protoactor-go's cluster leaves
// goroutines and memory behind after shutdown, which would weigh on
// whatever ran next in the same process.
const (
	childEnv      = "TROUPE_BENCH_CHILD"
	childSizesEnv = "TROUPE_BENCH_CHILD_SIZES"
)

// childFuncs are the functions a child can run, by name.
var childFuncs = map[string]func(Sizes) ([]float64, error){
	"cluster-request/troupe":     clusterLatency(TroupeClusterRequest),
	"cluster-request/protoactor": clusterLatency(ProtoClusterRequest),
	"cluster-activations/troupe": clusterRate(TroupeClusterActivations, func(c ClusterConfig) int { return c.Activations }),
	"cluster-activations/protoactor": clusterRate(ProtoClusterActivations,
		func(c ClusterConfig) int { return c.Activations }),
	"cluster-handover/troupe":     clusterSeconds(TroupeClusterHandover),
	"cluster-handover/protoactor": clusterSeconds(ProtoClusterHandover),
}

func clusterLatency(run func(ClusterConfig) (Latency, error)) func(Sizes) ([]float64, error) {
	return func(sz Sizes) ([]float64, error) {
		l, err := run(sz.Cluster)
		return []float64{micros(l.P50), micros(l.P99)}, err
	}
}

func clusterRate(run func(ClusterConfig) (time.Duration, error), n func(ClusterConfig) int) func(Sizes) ([]float64, error) {
	return func(sz Sizes) ([]float64, error) {
		d, err := run(sz.Cluster)
		return []float64{float64(n(sz.Cluster)) / d.Seconds()}, err
	}
}

func clusterSeconds(run func(ClusterConfig) (time.Duration, error)) func(Sizes) ([]float64, error) {
	return func(sz Sizes) ([]float64, error) {
		d, err := run(sz.Cluster)
		return []float64{d.Seconds()}, err
	}
}

// RunChildIfAsked plays the part the environment asks of a child process
// (a scenario side, or the second node of a remote scenario) and exits;
// otherwise it returns at once. Call it first thing in main and TestMain.
func RunChildIfAsked() {
	RunNode2IfAsked()
	name := os.Getenv(childEnv)
	if name == "" {
		return
	}
	fail := func(err error) {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	run, ok := childFuncs[name]
	if !ok {
		fail(fmt.Errorf("unknown child function %q", name))
	}
	var sz Sizes
	if err := json.Unmarshal([]byte(os.Getenv(childSizesEnv)), &sz); err != nil {
		fail(err)
	}
	figures, err := run(sz)
	if err != nil {
		fail(err)
	}
	out, _ := json.Marshal(figures)
	fmt.Println("result", string(out))
	os.Exit(0)
}

// inChild runs the named function in a child process and returns its
// figures.
func inChild(name string, sz Sizes) ([]float64, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	sizes, err := json.Marshal(sz)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+name, childSizesEnv+"="+string(sizes))
	cmd.Stderr = os.Stderr
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
			childErr = fmt.Errorf("%s: %s", name, strings.TrimPrefix(line, "error: "))
		}
	}
	if err := cmd.Wait(); err != nil && childErr == nil {
		childErr = fmt.Errorf("%s: %w", name, err)
	}
	if childErr == nil && figures == nil {
		childErr = fmt.Errorf("%s: no result", name)
	}
	return figures, childErr
}
