package testkit

import (
	"context"
	"io"
	"net"
	"sync"
)

// Proxy forwards the TCP connections it accepts on a loopback port to a
// target address, and cuts them on demand as a network failure would:
// both ends see their connection break, without a goodbye, while both
// processes still run. A server that advertises the proxy's address (Addr)
// is reached through it by every peer, so that a test can break each
// connection made to the server, whichever side writes what on it.
type Proxy struct {
	lis    net.Listener
	ctx    context.Context // ends with Close, and with it a dial in progress
	cancel context.CancelFunc
	wg     sync.WaitGroup // the accept loop and each link's goroutines

	mu     sync.Mutex
	target string
	links  map[*link]struct{} // the connections forwarded now
	closed bool
}

// link is one forwarded connection: down, accepted from a client, and up,
// dialed to the target (nil until the dial succeeds).
type link struct{ down, up net.Conn }

// NewProxy listens on an ephemeral loopback port; it forwards nothing
// until Forward names a target. Close it when done.
func NewProxy() (*Proxy, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{lis: lis, ctx: ctx, cancel: cancel, links: make(map[*link]struct{})}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Addr returns the address the proxy listens on.
func (p *Proxy) Addr() string { return p.lis.Addr().String() }

// Forward makes the proxy forward the connections it accepts from now on
// to target; those accepted before a target is set are closed at once.
// Connections already forwarded keep their target.
func (p *Proxy) Forward(target string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target = target
}

// Cut breaks every connection the proxy forwards, both ways, with a reset,
// and returns how many it broke. The proxy goes on accepting and
// forwarding new connections.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	links := p.links
	p.links = make(map[*link]struct{})
	p.mu.Unlock()
	for l := range links {
		reset(l.down)
		if l.up != nil {
			reset(l.up)
		}
	}
	return len(links)
}

// Close stops accepting, breaks every connection and waits until the
// proxy's goroutines have ended. It may be called more than once.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	_ = p.lis.Close()
	p.cancel()
	p.Cut()
	p.wg.Wait()
}

// accept forwards each connection accepted until the listener closes.
func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.lis.Accept()
		if err != nil {
			return // closed: loopback has no other failure worth going on after
		}
		l := &link{down: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			_ = c.Close()
			return
		}
		p.links[l] = struct{}{}
		target := p.target
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(l, target)
	}
}

// forward dials target for l and copies between its two ends until both
// directions have ended.
func (p *Proxy) forward(l *link, target string) {
	defer p.wg.Done()
	defer p.drop(l)
	if target == "" {
		return
	}
	var d net.Dialer
	up, err := d.DialContext(p.ctx, "tcp", target)
	if err != nil {
		return
	}
	p.mu.Lock()
	_, ok := p.links[l] // not cut while the dial was in progress
	if ok {
		l.up = up
	}
	p.mu.Unlock()
	if !ok {
		reset(up)
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		pipe(up, l.down)
	}()
	pipe(l.down, up)
	<-done
}

// drop forgets l and closes both its ends (if a cut has not already).
func (p *Proxy) drop(l *link) {
	p.mu.Lock()
	delete(p.links, l)
	p.mu.Unlock()
	_ = l.down.Close()
	if l.up != nil {
		_ = l.up.Close()
	}
}

// pipe copies src to dst until src ends. The end of src's writes (EOF)
// ends dst's writes too, as TCP carries a half-close; a failure either
// way (such as a cut) ends both connections.
func pipe(dst, src net.Conn) {
	if _, err := io.Copy(dst, src); err == nil {
		if tc, ok := dst.(*net.TCPConn); ok && tc.CloseWrite() == nil {
			return
		}
	}
	_ = dst.Close()
	_ = src.Close()
}

// reset closes c at once, discarding what it has not yet sent, so that
// its peer sees the connection reset rather than ended.
func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	_ = c.Close()
}
