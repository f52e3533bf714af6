package remote

import (
	"fmt"
	"sync"

	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// codecName is the gRPC content-subtype of Troupe's streams
// (application/grpc+troupe).
const codecName = "troupe"

// frame is a message already encoded as protobuf by the wire codec. The
// gRPC codec passes it through untouched, both ways.
type frame struct{ data []byte }

// frameCodec passes frames through and falls back to protobuf for anything
// else, so that the server can host other services too.
type frameCodec struct{}

func init() { encoding.RegisterCodecV2(frameCodec{}) }

func (frameCodec) Name() string { return codecName }

func (frameCodec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *frame:
		// gRPC writes the buffer after SendMsg returns, and the encoder
		// reuses its own for the next batch: hand over a pooled copy, which
		// gRPC returns to the pool once written.
		pool := mem.DefaultBufferPool()
		if mem.IsBelowBufferPoolingThreshold(len(m.data)) {
			pool = smallFrames
		}
		buf := pool.Get(len(m.data))
		copy(*buf, m.data)
		return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
	case proto.Message:
		b, err := proto.Marshal(m)
		if err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(b)}, nil
	}
	return nil, fmt.Errorf("remote: codec cannot marshal %T", v)
}

// smallFrames pools the buffers of frames too small for gRPC's default
// pool, which would not take them back once written (it pools buffers over
// mem.IsBelowBufferPoolingThreshold, 1 KiB, only) and would allocate one
// for each. Its buffers have room for smallFrameCap bytes, so that gRPC
// does give them back, and they are not cleared: only the frame's bytes,
// copied over, are read.
var smallFrames mem.BufferPool = &framePool{}

// smallFrameCap is the capacity of smallFrames' buffers: above gRPC's
// pooling threshold.
const smallFrameCap = 2 << 10

type framePool struct{ pool sync.Pool }

func (p *framePool) Get(n int) *[]byte {
	if b, ok := p.pool.Get().(*[]byte); ok && cap(*b) >= n {
		*b = (*b)[:n]
		return b
	}
	b := make([]byte, n, max(n, smallFrameCap))
	return &b
}

func (p *framePool) Put(b *[]byte) { p.pool.Put(b) }

func (frameCodec) Unmarshal(data mem.BufferSlice, v any) error {
	switch m := v.(type) {
	case *frame:
		// The buffers go back to gRPC's pool after this call: copy, reusing
		// the frame's own buffer.
		m.data = m.data[:0]
		for _, b := range data {
			m.data = append(m.data, b.ReadOnlyData()...)
		}
		return nil
	case proto.Message:
		return proto.Unmarshal(data.Materialize(), m)
	}
	return fmt.Errorf("remote: codec cannot unmarshal into %T", v)
}
