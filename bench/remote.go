package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strings"
	"sync"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"
	premote "github.com/asynkron/protoactor-go/remote"

	"github.com/troupehq/troupe/bench/internal/benchpb"
	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote"
)

// The remote scenarios run their second node in a child process: the
// benchmark binary itself, asked by this environment variable to serve an
// echo actor with one runtime or the other.
const node2Env = "TROUPE_BENCH_NODE2"

// RemoteConfig is the shape of the remote scenarios.
type RemoteConfig struct {
	// Messages is the number of pings of the throughput scenario (the shape
	// of protoactor-go's remote-benchmark: fire-and-forget pings, each
	// answered by a pong).
	Messages int
	// Requests and Warmup are the sequential round trips of the latency
	// scenario.
	Requests, Warmup int
}

// DefaultRemote is the shape of record.
func DefaultRemote() RemoteConfig {
	return RemoteConfig{Messages: 1_000_000, Requests: 20_000, Warmup: 1_000}
}

// echoKind is the kind both node2s register.
const echoKind = "echo"

// RunNode2IfAsked serves as the second node of a remote scenario when the
// environment asks for it, and then exits; otherwise it returns at once.
// Call it first thing in main and TestMain.
func RunNode2IfAsked() {
	impl := os.Getenv(node2Env)
	if impl == "" {
		return
	}
	var err error
	switch impl {
	case "troupe":
		err = troupeNode2()
	case "protoactor":
		err = protoNode2()
	default:
		err = fmt.Errorf("unknown runtime %q", impl)
	}
	if err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// announce tells the parent where node2 listens, then waits for the parent
// to close stdin.
func announce(address string) {
	fmt.Println("ready", address)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

func troupeNode2() error {
	if path := os.Getenv("TROUPE_BENCH_NODE2_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return err
	}
	r, err := remote.New(sys, remote.Config{})
	if err != nil {
		return err
	}
	r.Register(echoKind, actor.PropsFromProducer(func() actor.Actor { return &troupeEcho{} }))
	if err := r.Start(); err != nil {
		return err
	}
	announce(r.Address())
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	_ = r.Shutdown(ctx)
	return sys.Shutdown(ctx)
}

// troupeEcho answers a ping with a pong: to the requester of a request, to
// the actor that sent Start otherwise.
type troupeEcho struct{ sender *actor.PID }

func (e *troupeEcho) Receive(c actor.Context) {
	switch c.Message().(type) {
	case *benchpb.Start:
		e.sender = c.Sender()
		c.Respond(&benchpb.Started{})
	case *benchpb.Ping:
		if s := c.Sender(); s != nil {
			c.Respond(&benchpb.Pong{})
			return
		}
		c.Send(e.sender, &benchpb.Pong{})
	}
}

func protoNode2() error {
	port, err := freePort()
	if err != nil {
		return err
	}
	sys := newProtoSystem()
	r := premote.NewRemote(sys, premote.Configure("127.0.0.1", port))
	r.Register(echoKind, pactor.PropsFromProducer(func() pactor.Actor { return &protoEcho{} },
		pactor.WithMailbox(pactor.Bounded(1_000_000))))
	r.Start()
	announce(fmt.Sprintf("127.0.0.1:%d", port))
	r.Shutdown(true)
	return nil
}

type protoEcho struct{ sender *pactor.PID }

func (e *protoEcho) Receive(c pactor.Context) {
	switch c.Message().(type) {
	case *benchpb.Start:
		e.sender = c.Sender()
		c.Respond(&benchpb.Started{})
	case *benchpb.Ping:
		if s := c.Sender(); s != nil {
			c.Respond(&benchpb.Pong{})
			return
		}
		c.Send(e.sender, &benchpb.Pong{})
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// node2 is a running child process.
type node2 struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	address string
}

// startNode2 starts the benchmark binary as node2 for impl.
func startNode2(impl string) (*node2, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), node2Env+"="+impl)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
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
	n := &node2{cmd: cmd, stdin: stdin}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "ready ") {
		n.stop()
		return nil, fmt.Errorf("node2 (%s) did not start: %q %v", impl, line, err)
	}
	n.address = strings.TrimSpace(strings.TrimPrefix(line, "ready "))
	return n, nil
}

// stop closes node2's stdin and waits for it to exit.
func (n *node2) stop() {
	_ = n.stdin.Close()
	done := make(chan struct{})
	go func() {
		_ = n.cmd.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		_ = n.cmd.Process.Kill()
		<-done
	}
}

// troupeNode1 starts node1's system and remote and spawns the echo on n2.
func troupeNode1(n2 *node2) (*actor.System, *remote.Remote, *actor.PID, func(), error) {
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, nil, nil, err
	}
	r, err := remote.New(sys, remote.Config{})
	if err == nil {
		err = r.Start()
	}
	if err != nil {
		shutdown(sys)
		return nil, nil, nil, nil, err
	}
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
		shutdown(sys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	echo, err := r.Spawn(ctx, n2.address, echoKind)
	if err != nil {
		stop()
		return nil, nil, nil, nil, err
	}
	return sys, r, echo, stop, nil
}

// TroupeRemotePingPong sends cfg.Messages pings from node1's root to the
// echo on node2, which answers each with a pong to an actor on node1.
func TroupeRemotePingPong(cfg RemoteConfig) (time.Duration, error) {
	n2, err := startNode2("troupe")
	if err != nil {
		return 0, err
	}
	defer n2.stop()
	sys, _, echo, stop, err := troupeNode1(n2)
	if err != nil {
		return 0, err
	}
	defer stop()
	var done, ready sync.WaitGroup
	done.Add(1)
	ready.Add(1)
	count := 0
	sys.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		switch c.Message().(type) {
		case *actor.Started:
			c.Request(echo, &benchpb.Start{})
		case *benchpb.Started:
			ready.Done()
		case *benchpb.Pong:
			if count++; count == cfg.Messages {
				done.Done()
			}
		}
	}))
	ready.Wait()
	start := time.Now()
	ping := &benchpb.Ping{}
	for range cfg.Messages {
		sys.Send(echo, ping)
	}
	done.Wait()
	return time.Since(start), nil
}

// ProtoRemotePingPong is the same on protoactor-go.
func ProtoRemotePingPong(cfg RemoteConfig) (time.Duration, error) {
	n2, err := startNode2("protoactor")
	if err != nil {
		return 0, err
	}
	defer n2.stop()
	sys, r, echo, err := protoNode1(n2)
	if err != nil {
		return 0, err
	}
	defer r.Shutdown(true)
	var done, ready sync.WaitGroup
	done.Add(1)
	ready.Add(1)
	count := 0
	root := sys.Root
	root.Spawn(pactor.PropsFromFunc(func(c pactor.Context) {
		switch c.Message().(type) {
		case *pactor.Started:
			c.Request(echo, &benchpb.Start{})
		case *benchpb.Started:
			ready.Done()
		case *benchpb.Pong:
			if count++; count == cfg.Messages {
				done.Done()
			}
		}
	}, pactor.WithMailbox(pactor.Bounded(1_000_000))))
	ready.Wait()
	start := time.Now()
	ping := &benchpb.Ping{}
	for range cfg.Messages {
		root.Send(echo, ping)
	}
	done.Wait()
	return time.Since(start), nil
}

func protoNode1(n2 *node2) (*pactor.ActorSystem, *premote.Remote, *pactor.PID, error) {
	port, err := freePort()
	if err != nil {
		return nil, nil, nil, err
	}
	sys := newProtoSystem()
	r := premote.NewRemote(sys, premote.Configure("127.0.0.1", port))
	r.Start()
	resp, err := r.Spawn(n2.address, echoKind, shutdownTimeout)
	if err != nil {
		r.Shutdown(true)
		return nil, nil, nil, err
	}
	if resp.StatusCode != 0 {
		r.Shutdown(true)
		return nil, nil, nil, fmt.Errorf("protoactor remote spawn: status %d", resp.StatusCode)
	}
	return sys, r, resp.Pid, nil
}

// TroupeRemoteRequest measures sequential request/response round trips
// from node1's root to the echo on node2.
func TroupeRemoteRequest(cfg RemoteConfig) (Latency, error) {
	n2, err := startNode2("troupe")
	if err != nil {
		return Latency{}, err
	}
	defer n2.stop()
	sys, _, echo, stop, err := troupeNode1(n2)
	if err != nil {
		return Latency{}, err
	}
	defer stop()
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	ping := &benchpb.Ping{}
	samples := make([]time.Duration, 0, cfg.Requests)
	for i := range cfg.Warmup + cfg.Requests {
		start := time.Now()
		if _, err := sys.Request(ctx, echo, ping); err != nil {
			return Latency{}, err
		}
		if i >= cfg.Warmup {
			samples = append(samples, time.Since(start))
		}
	}
	return summarize(samples), nil
}

// ProtoRemoteRequest is the same on protoactor-go.
func ProtoRemoteRequest(cfg RemoteConfig) (Latency, error) {
	n2, err := startNode2("protoactor")
	if err != nil {
		return Latency{}, err
	}
	defer n2.stop()
	sys, r, echo, err := protoNode1(n2)
	if err != nil {
		return Latency{}, err
	}
	defer r.Shutdown(true)
	ping := &benchpb.Ping{}
	samples := make([]time.Duration, 0, cfg.Requests)
	for i := range cfg.Warmup + cfg.Requests {
		start := time.Now()
		if _, err := sys.Root.RequestFuture(echo, ping, requestTimeout).Result(); err != nil {
			return Latency{}, err
		}
		if i >= cfg.Warmup {
			samples = append(samples, time.Since(start))
		}
	}
	return summarize(samples), nil
}
