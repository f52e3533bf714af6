package testkit

import (
	"bufio"
	"errors"
	"io"
	"net"
	"syscall"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// echoServer echoes every line it reads on each connection it accepts,
// until the test ends.
func echoServer(t *testing.T) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() {
		_ = lis.Close()
		<-done
	})
	go func() {
		defer close(done)
		for {
			c, err := lis.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return lis.Addr().String()
}

// roundTrip writes a line on c and reads it back.
func roundTrip(c net.Conn, r *bufio.Reader, line string) error {
	if _, err := io.WriteString(c, line+"\n"); err != nil {
		return err
	}
	got, err := r.ReadString('\n')
	if err != nil {
		return err
	}
	if got != line+"\n" {
		return errors.New("echoed " + got)
	}
	return nil
}

// A proxy forwards connections to its target; Cut resets those it
// forwards, both ways, and the proxy forwards new ones after it.
func TestAProxyCutsItsConnectionsAndForwardsNewOnes(t *testing.T) {
	p, err := NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	p.Forward(echoServer(t))
	dial := func() (net.Conn, *bufio.Reader) {
		t.Helper()
		c, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
		r := bufio.NewReader(c)
		if err := roundTrip(c, r, "hello"); err != nil {
			t.Fatal(err)
		}
		return c, r
	}
	c, r := dial()
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut broke %d connections, want 1", n)
	}
	if _, err := r.ReadString('\n'); !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("read after the cut: %v, want a reset", err)
	}
	if err := roundTrip(c, r, "again"); err == nil {
		t.Fatal("the cut connection still carries lines")
	}
	dial()
	if n := p.Cut(); n != 1 {
		t.Fatalf("Cut broke %d connections, want the 1 made after the first cut", n)
	}
}

// Close ends every connection and goroutine of the proxy, and refuses new
// connections.
func TestAClosedProxyRefusesConnections(t *testing.T) {
	p, err := NewProxy()
	if err != nil {
		t.Fatal(err)
	}
	p.Forward(echoServer(t))
	c, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	if err := roundTrip(c, r, "hello"); err != nil {
		t.Fatal(err)
	}
	p.Close()
	p.Close()
	if _, err := r.ReadString('\n'); err == nil {
		t.Fatal("the connection outlived the proxy")
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Fatal("a closed proxy accepted a connection")
	}
}
