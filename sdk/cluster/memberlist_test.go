package cluster

import (
	"fmt"
	"testing"
)

func TestMemberListForgetsTheLongestDepartedBeyondItsBound(t *testing.T) {
	l := newMemberList(2)
	m := func(id string) Member { return Member{ID: id, Address: id + ":1"} }
	idsOf := func(topo Topology) string { return fmt.Sprint(ids(topo.Members)) }
	l.update([]Member{m("a"), m("b"), m("c"), m("d")})
	l.update([]Member{m("d")}) // a, b and c leave; a is forgotten
	// b and c stay refused; a, forgotten, is taken back.
	topo, _ := l.update([]Member{m("a"), m("b"), m("c"), m("d")})
	if got := idsOf(topo); got != "[a d]" {
		t.Fatalf("members %s, want [a d]", got)
	}
	for i := range 100 {
		l.update([]Member{m(fmt.Sprint("x", i)), m("d")})
	}
	if len(l.departed) != 2 || len(l.order) != 2 {
		t.Fatalf("remembers %d departed members (%d in order), want 2", len(l.departed), len(l.order))
	}
	// x97 and x98 left last: refused; x96 is forgotten.
	if topo, _ := l.update([]Member{m("x99"), m("x98"), m("x97"), m("x96"), m("d")}); idsOf(topo) != "[d x96 x99]" {
		t.Fatalf("members %s, want [d x96 x99]: the last two that left are refused", idsOf(topo))
	}
}
