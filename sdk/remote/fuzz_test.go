package remote

import (
	"net"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/remote/internal/wire"
)

// FuzzHandshake feeds arbitrary first frames to the listener's handshake
// checks: they must never panic, and must accept only a well-formed Hello of
// our version and cluster with a host:port address.
func FuzzHandshake(f *testing.F) {
	for _, h := range []*wire.Hello{
		{ProtocolVersion: 1, ClusterName: "troupe", MemberId: "m", Address: "127.0.0.1:7000"},
		{ProtocolVersion: 1, ClusterName: "other", Address: "127.0.0.1:7000"},
		{ProtocolVersion: 2, ClusterName: "troupe", Address: "[::1]:7000"},
		{ProtocolVersion: 1, ClusterName: "troupe", Address: "no-port"},
	} {
		b, _ := proto.Marshal(&wire.ConnectRequest{Frame: &wire.ConnectRequest_Hello{Hello: h}})
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff})
	sys, err := actor.NewSystem(actor.Config{})
	if err != nil {
		f.Fatal(err)
	}
	r, err := New(sys, Config{})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var req wire.ConnectRequest
		if proto.Unmarshal(data, &req) != nil || req.GetHello() == nil {
			return
		}
		h := req.GetHello()
		reason, msg := r.admit(h, nil)
		accepted := reason == wire.DisconnectReason_DISCONNECT_REASON_UNSPECIFIED
		if accepted && (h.GetProtocolVersion() != protocolVersion || h.GetClusterName() != "troupe") {
			t.Fatalf("accepted %v", h)
		}
		if _, _, err := net.SplitHostPort(h.GetAddress()); accepted && err != nil {
			t.Fatalf("accepted %v, whose address is not host:port: %v", h, err)
		}
		if !accepted && msg == "" {
			t.Fatalf("refused %v without a message", h)
		}
	})
}
