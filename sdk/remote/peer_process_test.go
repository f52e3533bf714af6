package remote

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/troupehq/troupe/sdk/actor"
)

// peerEnv makes the test binary run as a peer system instead of the tests.
const peerEnv = "TROUPE_REMOTE_TEST_PEER_BIND"

// runPeerProcess runs a peer system if asked to: it serves "echo" and
// prints its address, then runs until killed or its stdin closes.
func runPeerProcess() bool {
	bind := os.Getenv(peerEnv)
	if bind == "" {
		return false
	}
	sys, err := actor.NewSystem(actor.Config{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	r, err := New(sys, Config{BindAddress: bind})
	if err != nil {
		panic(err)
	}
	if err := r.Start(); err != nil {
		fmt.Println("error:", err)
		os.Exit(1)
	}
	if _, err := sys.SpawnNamed(actor.PropsFromFunc(echo), "echo"); err != nil {
		panic(err)
	}
	fmt.Println("address:", r.Address())
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(0)
	return true
}

// peerProcess is a peer system in a child process.
type peerProcess struct {
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	address string
}

// startPeerProcess starts the test binary as a peer bound to bind.
func startPeerProcess(t *testing.T, bind string) *peerProcess {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), peerEnv+"="+bind)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &peerProcess{cmd: cmd, stdin: stdin}
	t.Cleanup(p.kill)
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "address: ") {
		t.Fatalf("peer process did not start: %q, %v", line, err)
	}
	p.address = strings.TrimSpace(strings.TrimPrefix(line, "address: "))
	return p
}

// kill ends the process with SIGKILL: no goodbye, no flush.
func (p *peerProcess) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}
