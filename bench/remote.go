package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"

	pactor "github.com/asynkron/protoactor-go/actor"
	premote "github.com/asynkron/protoactor-go/remote"

	"github.com/troupehq/troupe/bench/internal/benchpb"
	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote"
)

// RemoteConfig is the shape of the remote scenarios, which run node1 in the
// benchmark's process and node2, serving an echo actor, in a child process
// (the child roles node2/troupe and node2/protoactor).
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

// announce tells the parent where node2 listens, then waits for the parent
// to close stdin.
func announce(address string) {
	fmt.Println("ready", address)
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// troupeNode2 is the child role node2/troupe: node2 of a remote scenario
// on Troupe.
func troupeNode2() error {
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

// protoNode2 is the child role node2/protoactor: node2 of a remote scenario
// on protoactor-go.
func protoNode2() error {
	sys := newProtoSystem()
	// Port 0: the remote listens on a port the kernel picks and takes the
	// address it got as the system's.
	r := premote.NewRemote(sys, premote.Configure("127.0.0.1", 0))
	r.Register(echoKind, pactor.PropsFromProducer(func() pactor.Actor { return &protoEcho{} },
		pactor.WithMailbox(pactor.Bounded(1_000_000))))
	r.Start()
	announce(sys.Address())
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

// node2 is a running child process.
type node2 struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	address string
}

// startNode2 starts a child process as node2 on impl (troupe or
// protoactor).
func startNode2(impl string) (*node2, error) {
	cmd, err := selfCommand("node2/" + impl)
	if err != nil {
		return nil, err
	}
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

// troupeNode1 starts node1's system and remote and spawns the echo on n2;
// stop shuts both down.
func troupeNode1(n2 *node2) (sys *actor.System, echo *actor.PID, stop func(), err error) {
	sys, err = actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		return nil, nil, nil, err
	}
	r, err := remote.New(sys, remote.Config{})
	if err == nil {
		err = r.Start()
	}
	if err != nil {
		shutdown(sys)
		return nil, nil, nil, err
	}
	stop = func() {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		defer cancel()
		_ = r.Shutdown(ctx)
		shutdown(sys)
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	echo, err = r.Spawn(ctx, n2.address, echoKind)
	if err != nil {
		stop()
		return nil, nil, nil, err
	}
	return sys, echo, stop, nil
}

// TroupeRemotePingPong sends cfg.Messages pings from node1's root to the
// echo on node2, which answers each with a pong to an actor on node1.
func TroupeRemotePingPong(cfg RemoteConfig) (time.Duration, error) {
	n2, err := startNode2("troupe")
	if err != nil {
		return 0, err
	}
	defer n2.stop()
	sys, echo, stop, err := troupeNode1(n2)
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

// protoNode1 starts node1's system and remote and spawns the echo on n2.
func protoNode1(n2 *node2) (*pactor.ActorSystem, *premote.Remote, *pactor.PID, error) {
	sys := newProtoSystem()
	r := premote.NewRemote(sys, premote.Configure("127.0.0.1", 0))
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
	sys, echo, stop, err := troupeNode1(n2)
	if err != nil {
		return Latency{}, err
	}
	defer stop()
	return sampleLatency("remote-request/troupe", cfg.Warmup, cfg.Requests, troupeRequest(sys, echo, &benchpb.Ping{}))
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
	return sampleLatency("remote-request/protoactor", cfg.Warmup, cfg.Requests, protoRequest(sys.Root, echo, &benchpb.Ping{}))
}
