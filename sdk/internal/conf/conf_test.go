package conf

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestDefaultFillsOnlyZeroValues(t *testing.T) {
	a, b := 0, 7
	Default(&a, 5)
	Default(&b, 5)
	var s named = nil
	Default(&s, named(stringer("d")))
	if a != 5 || b != 7 || s == nil {
		t.Fatalf("Default: %d, %d, %v; want 5, 7, the default", a, b, s)
	}
}

type named interface{ String() string }

type stringer string

func (s stringer) String() string { return string(s) }

func TestNotNegative(t *testing.T) {
	err := errors.Join(NotNegative("A", 0), NotNegative("B", time.Second), NotNegative("C", -time.Second), NotNegative("D", -2))
	if err == nil || !strings.Contains(err.Error(), "C must not be negative, got -1s") || !strings.Contains(err.Error(), "D must not be negative, got -2") ||
		strings.Contains(err.Error(), "A ") || strings.Contains(err.Error(), "B ") {
		t.Fatalf("errors = %v", err)
	}
}
