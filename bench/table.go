package bench

import (
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Row is one line of the comparison table: a figure for Troupe and for
// protoactor-go, each the median of several interleaved runs.
type Row struct {
	Name, Unit     string
	Troupe, Proto  float64
	HigherIsBetter bool
}

// Ratio is how many times better Troupe's figure is (above 1: Troupe wins).
func (r Row) Ratio() float64 {
	if r.Troupe == 0 || r.Proto == 0 {
		return 0
	}
	if r.HigherIsBetter {
		return r.Troupe / r.Proto
	}
	return r.Proto / r.Troupe
}

// WriteTable prints rows as an aligned table.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tunit\ttroupe\tprotoactor-go\ttroupe is\t")
	for _, r := range rows {
		better := "better"
		if r.HigherIsBetter {
			better = "faster"
		}
		if strings.Contains(r.Unit, "/op") || strings.Contains(r.Unit, "B/") {
			better = "smaller"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f× %s\t\n", r.Name, r.Unit, human(r.Troupe), human(r.Proto), r.Ratio(), better)
	}
	return tw.Flush()
}

// human formats a figure with an SI suffix.
func human(v float64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.2fG", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.1f", v)
	}
}

// median returns the median of xs.
func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s) == 0 {
		return 0
	}
	return s[len(s)/2]
}

// micros converts a duration to microseconds.
func micros(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
