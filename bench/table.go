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
// protoactor-go, each the median of several interleaved runs, and for the
// bare transport where the scenario measures it (0 otherwise).
type Row struct {
	// Name, Unit and HigherIsBetter come from the scenario's Metric.
	Name, Unit string
	// Troupe, Proto and Floor are the medians of each side.
	Troupe, Proto  float64
	Floor          float64
	HigherIsBetter bool
}

// Ratio is how many times better Troupe's figure is (above 1: Troupe wins).
func (r Row) Ratio() float64 { return r.ratio(r.Troupe) }

// FloorRatio is how many times better the bare transport's figure is than
// protoactor-go's: the best ratio any runtime over it could reach. It is 0
// without a floor.
func (r Row) FloorRatio() float64 { return r.ratio(r.Floor) }

func (r Row) ratio(v float64) float64 {
	if v == 0 || r.Proto == 0 {
		return 0
	}
	if r.HigherIsBetter {
		return v / r.Proto
	}
	return r.Proto / v
}

// WriteTable prints rows as an aligned table; where a row has a floor, the
// last two columns show it and its ratio to protoactor-go.
func WriteTable(w io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tunit\ttroupe\tprotoactor-go\ttroupe is\tbare gRPC\tbare gRPC is\t")
	for _, r := range rows {
		better := "better"
		if r.HigherIsBetter {
			better = "faster"
		}
		if strings.Contains(r.Unit, "/op") || strings.Contains(r.Unit, "B/") {
			better = "smaller"
		}
		floor, floorRatio := "", ""
		if r.Floor != 0 {
			floor, floorRatio = human(r.Floor), fmt.Sprintf("%.2f× %s", r.FloorRatio(), better)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%.2f× %s\t%s\t%s\t\n", r.Name, r.Unit, human(r.Troupe), human(r.Proto), r.Ratio(), better, floor, floorRatio)
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
