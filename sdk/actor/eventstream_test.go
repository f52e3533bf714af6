package actor

import "testing"

type eventA struct{ n int }
type eventB struct{}

func TestEventStreamTypedSubscriptions(t *testing.T) {
	var es EventStream
	var as []int
	var all int
	subA := Subscribe(&es, func(e eventA) { as = append(as, e.n) })
	subAll := es.Subscribe(func(any) { all++ })
	if es.Len() != 2 {
		t.Fatalf("Len = %d", es.Len())
	}
	es.Publish(eventA{1})
	es.Publish(eventB{})
	subA.Unsubscribe()
	subA.Unsubscribe() // idempotent
	es.Publish(eventA{2})
	if len(as) != 1 || as[0] != 1 || all != 3 {
		t.Fatalf("as = %v, all = %d", as, all)
	}
	subAll.Unsubscribe()
	if es.Len() != 0 {
		t.Fatalf("Len after unsubscribing = %d", es.Len())
	}
	es.Publish(eventA{3}) // no subscribers: nothing happens
}
