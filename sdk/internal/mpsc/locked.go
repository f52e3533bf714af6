package mpsc

import (
	"sync"
	"sync/atomic"
)

// Locked is an MPSC queue under a mutex, for rarely used queues such as an
// actor's system messages: it holds no buffer while empty, and the consumer
// checks for items with one atomic load, without locking.
//
// The zero value is an empty queue ready to use. It must not be copied.
type Locked struct {
	n     atomic.Int32
	head  int32
	mu    sync.Mutex
	items []any
}

// Push appends v.
func (q *Locked) Push(v any) {
	q.mu.Lock()
	q.items = append(q.items, v)
	q.n.Add(1)
	q.mu.Unlock()
}

// Pop removes and returns the oldest item, if any.
func (q *Locked) Pop() (v any, ok bool) {
	if q.n.Load() == 0 {
		return nil, false
	}
	return q.pop()
}

func (q *Locked) pop() (v any, ok bool) {
	q.mu.Lock()
	v = q.items[q.head]
	q.items[q.head] = nil
	if q.head++; int(q.head) == len(q.items) {
		q.items, q.head = nil, 0
	}
	q.n.Add(-1)
	q.mu.Unlock()
	return v, true
}

// NonEmpty reports whether the queue holds an item. It is safe from any
// goroutine.
func (q *Locked) NonEmpty() bool { return q.n.Load() > 0 }
