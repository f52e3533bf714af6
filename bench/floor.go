package bench

import (
	"context"
	"fmt"
	"net"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
)

// The latency scenarios also measure their floor: the same sequential
// round trips on a bare grpc-go bidirectional stream, with no actor runtime
// at either end. A server echoes each frame on the stream it came in on;
// frames are opaque bytes of floorFrameSize, about what either runtime
// writes for one request. Both ends use Troupe's default flow-control
// window. No runtime that talks over gRPC streams can answer faster than
// this, so the floor says how much of a latency gap is left to win.

// floorFrameSize is the size of the floor's frames in bytes.
const floorFrameSize = 96

// floorWindow is the HTTP/2 flow-control window of both ends (Troupe's
// default FlowControlWindow).
const floorWindow = 4 << 20

// floorCodec passes frames through as bytes.
type floorCodec struct{}

func (floorCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }

func (floorCodec) Unmarshal(data []byte, v any) error {
	p := v.(*[]byte)
	*p = append((*p)[:0], data...)
	return nil
}

func (floorCodec) Name() string { return "troupe-bench-bytes" }

// floorMethod is the echo stream's full method name.
const floorMethod = "/troupe.bench.Floor/Echo"

// floorStream describes the echo stream for both ends.
var floorStream = grpc.StreamDesc{StreamName: "Echo", ServerStreams: true, ClientStreams: true}

// startFloorServer serves the echo on a loopback port and returns its
// address and a function that stops it.
func startFloorServer() (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	s := grpc.NewServer(grpc.ForceServerCodec(floorCodec{}),
		grpc.InitialWindowSize(floorWindow), grpc.InitialConnWindowSize(floorWindow))
	desc := floorStream
	desc.Handler = func(_ any, stream grpc.ServerStream) error {
		var buf []byte
		for {
			if err := stream.RecvMsg(&buf); err != nil {
				return nil // the client went away
			}
			if err := stream.SendMsg(&buf); err != nil {
				return err
			}
		}
	}
	s.RegisterService(&grpc.ServiceDesc{ServiceName: "troupe.bench.Floor", HandlerType: (*any)(nil), Streams: []grpc.StreamDesc{desc}}, struct{}{})
	go func() { _ = s.Serve(l) }()
	return l.Addr().String(), s.Stop, nil
}

// floorLatency measures sequential round trips to the echo at address;
// name is the scenario's key and side, for sampleLatency.
func floorLatency(name, address string, warmup, requests int) (Latency, error) {
	cc, err := grpc.NewClient("passthrough:///"+address,
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithInitialWindowSize(floorWindow), grpc.WithInitialConnWindowSize(floorWindow),
		grpc.WithDefaultCallOptions(grpc.ForceCodec(floorCodec{})))
	if err != nil {
		return Latency{}, err
	}
	defer cc.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream, err := cc.NewStream(ctx, &floorStream, floorMethod)
	if err != nil {
		return Latency{}, err
	}
	out := make([]byte, floorFrameSize)
	var in []byte
	return sampleLatency(name, warmup, requests, func() error {
		if err := stream.SendMsg(&out); err != nil {
			return err
		}
		if err := stream.RecvMsg(&in); err != nil {
			return err
		}
		if len(in) != len(out) {
			return fmt.Errorf("floor echo: sent %d bytes, got %d back", len(out), len(in))
		}
		return nil
	})
}

// floorNode2 is the child role node2/grpc: the floor's echo server in a
// process of its own.
func floorNode2() error {
	address, stop, err := startFloorServer()
	if err != nil {
		return err
	}
	defer stop()
	announce(address)
	return nil
}

// FloorRemoteRequest is the floor of the remote request scenario: round
// trips to an echo in another process.
func FloorRemoteRequest(cfg RemoteConfig) (Latency, error) {
	n2, err := startNode2("grpc")
	if err != nil {
		return Latency{}, err
	}
	defer n2.stop()
	return floorLatency("remote-request/grpc", n2.address, cfg.Warmup, cfg.Requests)
}

// FloorClusterRequest is the floor of the grain request scenario: round
// trips to an echo in the same process, as between in-process members.
func FloorClusterRequest(cfg ClusterConfig) (Latency, error) {
	address, stop, err := startFloorServer()
	if err != nil {
		return Latency{}, err
	}
	defer stop()
	return floorLatency("cluster-request/grpc", address, cfg.Warmup, cfg.Requests)
}
