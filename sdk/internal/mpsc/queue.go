// Package mpsc holds the lock-free multi-producer single-consumer queues
// behind actor mailboxes.
//
// Any number of goroutines may push concurrently; exactly one goroutine at a
// time may pop (the mailbox guarantees this by running at most one consumer).
// Items pushed by one goroutine are popped in the order it pushed them.
package mpsc

import "sync/atomic"

// Ring sizes of the unbounded Queue.
const (
	// minRing is the size of a queue's first ring.
	minRing = 8
	// maxRing caps growth: a longer backlog is a chain of rings this size.
	maxRing = 1024
	// shrinkAbove: an idle queue whose ring is bigger than this swaps it for a
	// minRing one, so a burst's buffer does not outlive the burst. Smaller
	// rings are kept, so a steady flow reuses one warm buffer forever.
	shrinkAbove = 256
)

// Queue is a lock-free MPSC queue: a chain of rings. Producers claim cells
// of the newest ring with a CAS; while the consumer keeps up the same ring is
// reused indefinitely, so a steady flow allocates nothing. A producer that
// finds the ring full closes it and links one twice the size (up to
// maxRing); the consumer drains the closed ring, then moves on. It hands
// the cells of each full-size ring it finishes to the next successor a
// producer links (see recycle), so that a backlog kept over maxRing items
// reuses a few buffers instead of allocating one per maxRing items.
//
// A bounded queue (Bound) has one ring of the bound's size and never links
// another: TryPush fails when it is full.
//
// The zero value is an empty unbounded queue ready to use; it allocates
// nothing until the first Push. It must not be copied.
type Queue[T any] struct {
	// tail is the ring producers push to. It only moves forward.
	tail atomic.Pointer[ring[T]]
	// first hands the first ring to the consumer, which then clears it.
	first atomic.Pointer[ring[T]]
	// head and pos belong to the consumer: the ring and position it reads.
	head *ring[T]
	pos  uint64
}

// Bound makes an empty, never used queue hold at most capacity items,
// rounded up to a power of two (at least 2), allocated at once. capacity
// must be positive.
func (q *Queue[T]) Bound(capacity int) {
	r := newRing[T](capacity)
	r.bounded = true
	q.tail.Store(r)
	q.first.Store(r)
}

// Cap returns a bounded queue's capacity, 0 for an unbounded one.
func (q *Queue[T]) Cap() int {
	if r := q.tail.Load(); r != nil && r.bounded {
		return len(r.cells)
	}
	return 0
}

// TryPush appends v to a bounded queue and reports true, or reports false
// when it is full. On an unbounded queue it is Push.
func (q *Queue[T]) TryPush(v T) bool { return q.Offer(v) == Accepted }

// OfferResult says what Offer did.
type OfferResult int

const (
	// Accepted: the item is queued.
	Accepted OfferResult = iota
	// Full: a bounded queue is full; try again later.
	Full
	// Closed: the queue is closed; it will never take the item.
	Closed
)

// Offer appends v to a bounded queue unless it is full or closed. On an
// unbounded queue it is Push.
func (q *Queue[T]) Offer(v T) OfferResult {
	r := q.tail.Load()
	if r != nil {
		if c, pos := r.claim(); c != nil {
			c.publish(v, pos)
			return Accepted
		}
		if r.bounded {
			switch r.push(v) {
			case pushed:
				return Accepted
			case full:
				return Full
			}
			return Closed
		}
	}
	q.pushSlow(v)
	return Accepted
}

// Free reports whether an Offer to a bounded queue would find room now (or
// find it closed). It is safe from any goroutine; the answer may be stale
// by the time it is used.
func (q *Queue[T]) Free() bool {
	r := q.tail.Load()
	if r == nil || !r.bounded {
		return true
	}
	pos := r.tail.Load()
	return pos&closedBit != 0 || r.cells[pos&r.mask].seq.Load() == pos
}

// Close makes a bounded queue refuse every later Offer. Items offered
// before remain for the consumer, who can tell with Drained when it has
// them all. Close is safe from any goroutine.
func (q *Queue[T]) Close() {
	if r := q.tail.Load(); r != nil && r.bounded {
		r.tail.Or(closedBit)
	}
}

// Drained reports whether a closed bounded queue has given the consumer
// every item it accepted. Consumer only.
func (q *Queue[T]) Drained() bool {
	r := q.head
	if r == nil {
		r = q.first.Load()
	}
	return r != nil && r.bounded && r.drained(q.pos)
}

// Len returns the number of items in a bounded queue, counting those still
// being written. Consumer only; the answer may be stale by the time it is
// used.
func (q *Queue[T]) Len() int {
	r := q.head
	if r == nil {
		r = q.first.Load()
	}
	if r == nil || !r.bounded {
		return 0
	}
	return int(r.tail.Load()&^closedBit - q.pos)
}

// Push appends v to an unbounded queue. It never blocks and never fails;
// on a bounded queue (which it would fill) use TryPush or Offer.
func (q *Queue[T]) Push(v T) {
	if r := q.tail.Load(); r != nil {
		if c, pos := r.claim(); c != nil {
			c.publish(v, pos)
			return
		}
	}
	q.pushSlow(v)
}

func (q *Queue[T]) pushSlow(v T) {
	r := q.tail.Load()
	if r == nil {
		r = q.init()
	}
	for {
		res := r.push(v)
		switch {
		case res == pushed:
			return
		case r.bounded:
			panic("mpsc: Push on a full or closed bounded queue; use TryPush or Offer")
		case res == full:
			r = q.successor(r, min(2*len(r.cells), maxRing))
		default: // closed
			r = q.successor(r, minRing)
		}
	}
}

// init installs the first ring; concurrent callers agree on one.
func (q *Queue[T]) init() *ring[T] {
	n := newRing[T](minRing)
	if q.tail.CompareAndSwap(nil, n) {
		q.first.Store(n)
		return n
	}
	return q.tail.Load()
}

// successor closes r, links a ring of the given size after it unless one is
// linked already, moves the tail past r and returns the current tail.
func (q *Queue[T]) successor(r *ring[T], size int) *ring[T] {
	if r.next.Load() == nil {
		var n *ring[T]
		if size == maxRing {
			n = r.spare.Swap(nil)
		}
		if n == nil {
			n = newRing[T](size)
		}
		r.next.CompareAndSwap(nil, n)
	}
	r.tail.Or(closedBit)
	q.tail.CompareAndSwap(r, r.next.Load())
	return q.tail.Load()
}

// Pop removes and returns the oldest item. ok is false when the queue is
// empty or the oldest item's producer has not finished writing it yet (it
// will be visible shortly, and that producer then schedules the consumer).
// Only one goroutine may call Pop at a time.
func (q *Queue[T]) Pop() (v T, ok bool) {
	if r := q.head; r != nil {
		if v, ok = r.pop(q.pos); ok {
			q.pos++
			return v, true
		}
	}
	return q.popSlow()
}

func (q *Queue[T]) popSlow() (v T, ok bool) {
	r := q.head
	if r == nil {
		if r = q.first.Load(); r == nil {
			return v, false
		}
		q.first.Store(nil)
		q.head = r
	}
	for {
		if v, ok = r.pop(q.pos); ok {
			q.pos++
			return v, true
		}
		if !r.drained(q.pos) {
			return v, false
		}
		// Closed and fully read: every later item is in the successor,
		// which was linked before r was closed.
		q.recycle(r)
		r = r.next.Load()
		q.head, q.pos = r, r.start
	}
}

// recycle offers the cells of r, a full-size ring the consumer has just
// read to the end, to the successor a producer links when the tail ring
// fills, so that a backlog that keeps a queue chaining rings does not
// allocate one per maxRing items. (The offer waits on the tail ring, not
// in the Queue, which every actor's mailbox holds; if the tail moves on
// meanwhile, the cells go with the ring they wait on.) Only the cells are
// reused, under a new ring: r itself stays closed for good, so a producer
// still holding it can never claim a cell again (nor has one claimed and
// unwritten: r would not be read to the end). Every cell of r is free for
// the position that follows r's last, so the new ring starts there with
// no cell touched.
func (q *Queue[T]) recycle(r *ring[T]) {
	if r.bounded || len(r.cells) != maxRing {
		return
	}
	n := &ring[T]{mask: r.mask, cells: r.cells, start: q.pos}
	n.tail.Store(q.pos)
	q.tail.Load().spare.Store(n)
}

// Shrink swaps the ring of an empty queue for a minRing one when it is
// bigger than shrinkAbove, releasing the buffer a burst needed. Call it only
// from the consumer, after Pop reported empty.
func (q *Queue[T]) Shrink() {
	if t := q.tail.Load(); t != nil && t.spare.Load() != nil {
		t.spare.Store(nil) // an idle queue keeps no spare cells
	}
	r := q.head
	if r == nil || r.bounded || len(r.cells) <= shrinkAbove {
		return
	}
	// Close r only if no producer has claimed a cell since the last Pop.
	if !r.tail.CompareAndSwap(q.pos, q.pos|closedBit) {
		return
	}
	q.successor(r, minRing)
	q.head = r.next.Load()
	q.pos = q.head.start
}

// Mark is the consumer's position in a Queue, taken with Queue.Mark.
type Mark[T any] struct {
	r   *ring[T]
	pos uint64
}

// Mark returns the consumer's position. Take it after Pop reported empty,
// while still the consumer.
func (q *Queue[T]) Mark() Mark[T] { return Mark[T]{q.head, q.pos} }

// Moved reports whether an item was pushed (or a push began) after the
// position m. Unlike Pop it is safe from any goroutine, so a consumer that
// has handed the queue over can still ask whether it left work behind.
func (q *Queue[T]) Moved(m Mark[T]) bool {
	if m.r == nil {
		return q.tail.Load() != nil
	}
	return m.r.tail.Load()&^closedBit != m.pos || m.r.next.Load() != nil
}
