package actor

import (
	"sync"
	"sync/atomic"
)

// EventStream is the system's publish/subscribe bus for runtime events
// (DeadLetterEvent, SupervisorEvent, and those of remoting and clustering).
// Publishing is lock-free and runs the handlers synchronously on the
// publisher's goroutine, so handlers must be quick and must not block.
type EventStream struct {
	mu   sync.Mutex
	subs atomic.Pointer[[]*Subscription]
}

// Subscription is a registered handler; Unsubscribe removes it.
type Subscription struct {
	es     *EventStream
	fn     func(any)
	active atomic.Bool
}

// Subscribe calls fn with every event published.
func (es *EventStream) Subscribe(fn func(event any)) *Subscription {
	s := &Subscription{es: es, fn: fn}
	s.active.Store(true)
	es.mu.Lock()
	defer es.mu.Unlock()
	var list []*Subscription
	if old := es.subs.Load(); old != nil {
		list = append(list, *old...)
	}
	list = append(list, s)
	es.subs.Store(&list)
	return s
}

// Subscribe calls fn with every event of type T published on es.
func Subscribe[T any](es *EventStream, fn func(event T)) *Subscription {
	return es.Subscribe(func(event any) {
		if e, ok := event.(T); ok {
			fn(e)
		}
	})
}

// Unsubscribe removes the subscription; fn is not called afterwards by
// publishes that start later. It is safe to call more than once.
func (s *Subscription) Unsubscribe() {
	if !s.active.Swap(false) {
		return
	}
	es := s.es
	es.mu.Lock()
	defer es.mu.Unlock()
	old := *es.subs.Load()
	list := make([]*Subscription, 0, len(old)-1)
	for _, x := range old {
		if x != s {
			list = append(list, x)
		}
	}
	es.subs.Store(&list)
}

// Publish delivers event to every subscriber.
func (es *EventStream) Publish(event any) {
	list := es.subs.Load()
	if list == nil {
		return
	}
	for _, s := range *list {
		if s.active.Load() {
			s.fn(event)
		}
	}
}

// Len returns the number of subscriptions.
func (es *EventStream) Len() int {
	if list := es.subs.Load(); list != nil {
		return len(*list)
	}
	return 0
}
