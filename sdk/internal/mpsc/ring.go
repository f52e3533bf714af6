package mpsc

import (
	"math/bits"
	"sync/atomic"
)

// closedBit marks a ring's tail as closed: no producer can claim a cell any
// more, and the rest of the tail is the final number of claims.
const closedBit = uint64(1) << 63

// ring is a bounded lock-free MPSC queue over a fixed array: Dmitry Vyukov's
// bounded queue with per-cell sequence numbers, plus a closed state so that
// an unbounded Queue can retire it and move on to a successor.
type ring[T any] struct {
	// tail is the position of the next cell to claim (producers);
	// closedBit set when closed. It starts at start and only grows.
	tail atomic.Uint64
	// start is the position of the ring's first cell: 0, or where the
	// ring whose cells it took over ended (see Queue.recycle).
	start uint64
	// next is the successor ring in a Queue.
	next atomic.Pointer[ring[T]]
	// spare is cells the consumer offers for next (see Queue.recycle).
	spare atomic.Pointer[ring[T]]
	mask  uint64
	cells []cell[T]
	// bounded rings belong to bounded queues: full means full, not "link a
	// successor".
	bounded bool
}

// cell is one slot. seq says whose turn it is: pos when free for the
// producer of position pos, pos+1 once that producer has written val.
type cell[T any] struct {
	seq atomic.Uint64
	val T
}

type pushResult int

const (
	pushed pushResult = iota
	full
	closed
)

// newRing returns a ring of capacity rounded up to a power of two, and at
// least 2: with one cell, "written for position n" and "free for position
// n+1" would be the same sequence number.
func newRing[T any](capacity int) *ring[T] {
	n := uint64(2)
	if capacity > 2 {
		n = 1 << bits.Len64(uint64(capacity-1))
	}
	r := &ring[T]{mask: n - 1, cells: make([]cell[T], n)}
	for i := range r.cells {
		r.cells[i].seq.Store(uint64(i))
	}
	return r
}

// claim claims the next cell in the uncontended case: the ring is open, the
// cell is free and no other producer races for it. It returns nil
// otherwise; push then handles the general case. claim is small enough to
// inline into the callers' fast paths.
func (r *ring[T]) claim() (c *cell[T], pos uint64) {
	pos = r.tail.Load()
	c = &r.cells[pos&r.mask]
	if pos&closedBit == 0 && c.seq.Load() == pos && r.tail.CompareAndSwap(pos, pos+1) {
		return c, pos
	}
	return nil, 0
}

// publish writes v to a cell claimed at pos and makes it visible.
func (c *cell[T]) publish(v T, pos uint64) {
	c.val = v
	c.seq.Store(pos + 1)
}

// push claims the next cell and writes v to it.
func (r *ring[T]) push(v T) pushResult {
	pos := r.tail.Load()
	for {
		if pos&closedBit != 0 {
			return closed
		}
		c := &r.cells[pos&r.mask]
		seq := c.seq.Load()
		switch d := int64(seq - pos); {
		case d == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				c.publish(v, pos)
				return pushed
			}
			pos = r.tail.Load()
		case d < 0:
			return full
		default:
			pos = r.tail.Load()
		}
	}
}

// pop reads the cell at pos (the consumer's position) if it is ready.
func (r *ring[T]) pop(pos uint64) (v T, ok bool) {
	c := &r.cells[pos&r.mask]
	if c.seq.Load() != pos+1 {
		return v, false
	}
	v = c.val
	var zero T
	c.val = zero
	c.seq.Store(pos + r.mask + 1)
	return v, true
}

// drained reports whether the ring is closed and every claimed cell up to
// pos has been read.
func (r *ring[T]) drained(pos uint64) bool {
	return r.tail.Load() == pos|closedBit
}
