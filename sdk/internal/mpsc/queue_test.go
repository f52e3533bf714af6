package mpsc

import (
	"sync"
	"sync/atomic"
	"testing"
)

type item struct{ producer, seq int }

// popper is what the queues offer the consumer.
type popper interface{ Pop() (any, bool) }

// shrinking pops from a Queue[any] and shrinks it whenever it finds it empty, as
// an idle mailbox does.
type shrinking struct{ q *Queue[any] }

func (s shrinking) Pop() (any, bool) {
	it, ok := s.q.Pop()
	if !ok {
		s.q.Shrink()
	}
	return it, ok
}

// drain pops until it has n items, checking per-producer FIFO order, and
// fails if an item is lost, duplicated or reordered.
func drain(t *testing.T, q popper, producers, perProducer int, done <-chan struct{}) {
	t.Helper()
	next := make([]int, producers)
	for got := 0; got < producers*perProducer; {
		v, ok := q.Pop()
		if !ok {
			select {
			case <-done:
				// Every producer returned: a failed Pop now means a lost item
				// only if it stays failed, so re-check before failing.
				if v, ok = q.Pop(); !ok {
					t.Fatalf("queue empty after %d of %d items", got, producers*perProducer)
				}
			default:
				continue
			}
		}
		it := v.(item)
		if it.seq != next[it.producer] {
			t.Fatalf("producer %d: got seq %d, want %d", it.producer, it.seq, next[it.producer])
		}
		next[it.producer]++
		got++
	}
	if v, ok := q.Pop(); ok {
		t.Fatalf("extra item %+v", v)
	}
}

// produce runs producers goroutines, each pushing perProducer items with
// push, while the test drains q and checks per-producer order.
func produce(t *testing.T, q popper, producers, perProducer int, push func(item)) {
	t.Helper()
	var wg sync.WaitGroup
	done := make(chan struct{})
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				push(item{p, i})
			}
		})
	}
	go func() { wg.Wait(); close(done) }()
	drain(t, q, producers, perProducer, done)
	<-done
}

// spinPush retries TryPush on a full bounded queue.
func spinPush(q *Queue[any]) func(item) {
	return func(it item) {
		for !q.TryPush(it) {
		}
	}
}

func TestQueueFIFOPerProducer(t *testing.T) {
	const producers, perProducer = 8, 20000
	var q Queue[any]
	produce(t, &q, producers, perProducer, func(it item) { q.Push(it) })
}

func TestQueueFIFOPerProducerWhileShrinking(t *testing.T) {
	const producers, perProducer = 8, 20000
	var q Queue[any]
	produce(t, shrinking{&q}, producers, perProducer, func(it item) { q.Push(it) })
}

func TestQueueGrowsOnBacklogAndKeepsOrder(t *testing.T) {
	var q Queue[any]
	const n = 5000
	for i := range n {
		q.Push(i)
	}
	if got := len(q.tail.Load().cells); got != maxRing {
		t.Fatalf("tail ring size after a backlog of %d = %d, want %d", n, got, maxRing)
	}
	for i := range n {
		if v, ok := q.Pop(); !ok || v != i {
			t.Fatalf("pop = %d, %v; want %d, true", v, ok, i)
		}
	}
	if _, ok := q.Pop(); ok {
		t.Fatal("queue not empty")
	}
}

// A backlog that keeps the queue chaining full-size rings reuses the cells
// of the rings the consumer has read to the end, and keeps every item in
// order.
func TestQueueBacklogReusesTheCellsOfRingsReadToTheEnd(t *testing.T) {
	var q Queue[any]
	pushed, popped := 0, 0
	push := func(n int) {
		for range n {
			q.Push(pushed)
			pushed++
		}
	}
	pop := func(n int) {
		for range n {
			if v, ok := q.Pop(); !ok || v != popped {
				t.Fatalf("pop = %v, %v; want %d", v, ok, popped)
			}
			popped++
		}
	}
	push(3 * maxRing / 2)
	arrays := map[*cell[any]]bool{}
	const cycles = 50
	for range cycles {
		push(maxRing)
		pop(maxRing)
		arrays[&q.tail.Load().cells[0]] = true
	}
	pop(pushed - popped)
	if _, ok := q.Pop(); ok {
		t.Fatal("queue not empty")
	}
	// Each cycle fills a ring; without reuse, each would have new cells.
	if len(arrays) > 4 {
		t.Fatalf("%d cycles of a backlog used %d cell arrays, want at most 4", cycles, len(arrays))
	}
}

// bursty pops only in bursts: it lets the backlog grow to several
// full-size rings, then drains it to under one, so that producers link
// successors over recycled cells while others still push to older rings.
// It counts the rings the consumer moved to whose cells it had read
// before.
type bursty struct {
	q             *Queue[any]
	pushed        *atomic.Int64
	total, popped int64
	draining      bool
	seen          map[*cell[any]]bool
	head          *ring[any]
	reused, rings int
}

func (b *bursty) Pop() (any, bool) {
	if !b.draining {
		if b.pushed.Load()-b.popped < 3*maxRing && b.pushed.Load() < b.total {
			return nil, false
		}
		b.draining = true
	}
	v, ok := b.q.Pop()
	if !ok {
		return v, ok
	}
	b.popped++
	if h := b.q.head; h != b.head {
		b.head = h
		b.rings++
		if b.seen[&h.cells[0]] {
			b.reused++
		}
		b.seen[&h.cells[0]] = true
	}
	if b.pushed.Load()-b.popped < maxRing/2 && b.pushed.Load() < b.total {
		b.draining = false
	}
	return v, ok
}

func TestQueueFIFOPerProducerThroughRecycledRings(t *testing.T) {
	const producers, perProducer = 4, 50000
	var q Queue[any]
	var pushed atomic.Int64
	b := &bursty{q: &q, pushed: &pushed, total: producers * perProducer, seen: map[*cell[any]]bool{}}
	produce(t, b, producers, perProducer, func(it item) {
		q.Push(it)
		pushed.Add(1)
	})
	if b.reused == 0 {
		t.Fatalf("the consumer went through %d rings, none over recycled cells", b.rings)
	}
}

func TestQueueSteadyFlowReusesOneRing(t *testing.T) {
	var q Queue[any]
	q.Push(0)
	q.Pop()
	r := q.head
	for i := range 10 * minRing {
		q.Push(i)
		if v, ok := q.Pop(); !ok || v != i {
			t.Fatalf("pop = %d, %v; want %d", v, ok, i)
		}
	}
	if q.head != r || q.tail.Load() != r {
		t.Fatal("a consumer that keeps up made the queue switch rings")
	}
}

func TestQueueShrinkReleasesBigRingsOnly(t *testing.T) {
	var q Queue[any]
	q.Push(1)
	q.Pop()
	small := q.head
	q.Shrink()
	if q.head != small {
		t.Fatal("shrink replaced a small ring")
	}
	for i := range 2 * shrinkAbove {
		q.Push(i)
	}
	for range 2 * shrinkAbove {
		q.Pop()
	}
	if len(q.head.cells) <= shrinkAbove {
		t.Fatalf("ring after a burst has %d cells, want more than %d", len(q.head.cells), shrinkAbove)
	}
	q.Shrink()
	if got := len(q.head.cells); got != minRing || q.tail.Load() != q.head {
		t.Fatalf("after shrink: head ring %d cells (tail same: %v), want %d", got, q.tail.Load() == q.head, minRing)
	}
	q.Push(42)
	if v, ok := q.Pop(); !ok || v != 42 {
		t.Fatalf("pop after shrink = %d, %v", v, ok)
	}
}

func TestQueueShrinkRefusesWhileAClaimIsPending(t *testing.T) {
	var q Queue[any]
	for i := range 2 * shrinkAbove {
		q.Push(i)
	}
	for range 2 * shrinkAbove {
		q.Pop()
	}
	r := q.head
	// Simulate a producer that claimed the next cell but has not written it.
	pos := r.tail.Add(1) - 1
	q.Shrink()
	if q.head != r {
		t.Fatal("shrink replaced a ring with a pending claim")
	}
	c := &r.cells[pos&r.mask]
	c.publish(7, pos)
	if v, ok := q.Pop(); !ok || v != 7 {
		t.Fatalf("pop after pending write = %d, %v; want 7, true", v, ok)
	}
}

func TestQueueMovedSeesPushesAfterMark(t *testing.T) {
	var q Queue[any]
	m := q.Mark()
	if q.Moved(m) {
		t.Fatal("moved on a never used queue")
	}
	q.Push(1)
	if !q.Moved(m) {
		t.Fatal("not moved after first push")
	}
	q.Pop()
	m = q.Mark()
	if q.Moved(m) {
		t.Fatal("moved right after mark")
	}
	q.Push(2)
	if !q.Moved(m) {
		t.Fatal("not moved after a push")
	}
	var b Queue[any]
	b.Bound(2)
	b.TryPush(1)
	b.Pop()
	bm := b.Mark()
	if b.Moved(bm) {
		t.Fatal("bounded queue moved right after mark")
	}
	b.TryPush(2)
	if !b.Moved(bm) {
		t.Fatal("bounded queue not moved after push")
	}
}

func TestLockedFIFOPerProducer(t *testing.T) {
	const producers, perProducer = 4, 5000
	var q Locked
	produce(t, &q, producers, perProducer, func(it item) { q.Push(it) })
	if q.NonEmpty() || q.items != nil {
		t.Fatal("drained locked queue still holds a buffer")
	}
}

func TestBoundedFIFOPerProducerAndBound(t *testing.T) {
	const producers, perProducer = 8, 20000
	var r Queue[any]
	r.Bound(100)
	if r.Cap() != 128 {
		t.Fatalf("Cap() = %d, want 128", r.Cap())
	}
	produce(t, &r, producers, perProducer, spinPush(&r))
	if got := len(r.tail.Load().cells); got != 128 || r.tail.Load() != r.head {
		t.Fatalf("bounded queue switched rings or resized: %d cells", got)
	}
}

func TestBoundedOfOneHoldsTwoAndLosesNothing(t *testing.T) {
	const producers, perProducer = 4, 5000
	var q Queue[any]
	q.Bound(1)
	if q.Cap() != 2 {
		t.Fatalf("Cap() = %d, want 2", q.Cap())
	}
	produce(t, &q, producers, perProducer, spinPush(&q))
}

func TestBoundedFullRefusesPush(t *testing.T) {
	var r Queue[any]
	r.Bound(4)
	for i := range 4 {
		if !r.TryPush(i) {
			t.Fatalf("push %d into ring of 4 failed", i)
		}
	}
	if r.TryPush(4) {
		t.Fatal("push into full ring succeeded")
	}
	if v, ok := r.Pop(); !ok || v != 0 {
		t.Fatalf("pop = %d, %v", v, ok)
	}
	if !r.TryPush(4) {
		t.Fatal("push after pop failed")
	}
}

func TestBoundedCloseRefusesLaterOffersAndDrains(t *testing.T) {
	var q Queue[any]
	q.Bound(4)
	for i := range 3 {
		if q.Offer(i) != Accepted {
			t.Fatalf("offer %d refused", i)
		}
	}
	if q.Len() != 3 {
		t.Fatalf("Len = %d, want 3", q.Len())
	}
	q.Close()
	if r := q.Offer(99); r != Closed {
		t.Fatalf("offer after close = %v, want Closed", r)
	}
	for i := range 3 {
		if q.Drained() {
			t.Fatalf("drained with %d items left", 3-i)
		}
		if v, ok := q.Pop(); !ok || v != i {
			t.Fatalf("pop = %v, %v; want %d", v, ok, i)
		}
	}
	if !q.Drained() {
		t.Fatal("not drained after popping everything")
	}
	var full Queue[any]
	full.Bound(2)
	full.Offer(1)
	if !full.Free() {
		t.Fatal("a queue with room is not Free")
	}
	full.Offer(2)
	if full.Free() {
		t.Fatal("a full queue is Free")
	}
	if r := full.Offer(3); r != Full {
		t.Fatalf("offer to a full queue = %v, want Full", r)
	}
	full.Pop()
	if !full.Free() {
		t.Fatal("not Free after a Pop")
	}
}

func TestBoundedCloseRacingProducersLosesNothing(t *testing.T) {
	for round := range 50 {
		var q Queue[any]
		q.Bound(64)
		var accepted atomic.Int64
		var wg sync.WaitGroup
		for range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					switch q.Offer(i) {
					case Accepted:
						accepted.Add(1)
					case Closed:
						return
					}
				}
			})
		}
		popped := int64(0)
		for popped < 1000 {
			if _, ok := q.Pop(); ok {
				popped++
			}
		}
		q.Close()
		for !q.Drained() {
			if _, ok := q.Pop(); ok {
				popped++
			}
		}
		wg.Wait()
		if popped != accepted.Load() {
			t.Fatalf("round %d: popped %d, accepted %d", round, popped, accepted.Load())
		}
	}
}
