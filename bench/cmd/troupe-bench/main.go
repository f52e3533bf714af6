// Command troupe-bench runs Troupe's benchmarks side by side with
// protoactor-go and prints a table: each figure is the median of several
// interleaved runs, so both see the same machine load, and only the ratio
// is meant to be compared across machines. The remote and cluster
// scenarios start this binary again as child processes (see package bench,
// which also tells how to profile them).
//
//	go run ./cmd/troupe-bench                    # the shapes of record (minutes)
//	go run ./cmd/troupe-bench -quick             # small shapes (seconds)
//	go run ./cmd/troupe-bench -quick -only '^cluster-' -runs 3 -v
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"runtime"
	"strings"

	"github.com/troupehq/troupe/bench"
)

func main() {
	bench.RunChildIfAsked()
	quick := flag.Bool("quick", false, "small shapes for a smoke run")
	runs := flag.Int("runs", 5, "interleaved runs per side; the table shows medians")
	verbose := flag.Bool("v", false, "print every run")
	only := flag.String("only", "", "run only the scenarios whose key ("+strings.Join(scenarioKeys(), ", ")+") matches this regular expression")
	flag.Parse()
	filter, err := regexp.Compile(*only)
	if err != nil {
		fmt.Fprintln(os.Stderr, "troupe-bench: -only:", err)
		os.Exit(2)
	}

	sizes := bench.FullSizes()
	if *quick {
		sizes = bench.QuickSizes()
	}
	var log io.Writer = io.Discard
	if *verbose {
		log = os.Stderr
	}
	var scenarios []bench.Scenario
	for _, s := range bench.AllScenarios(sizes) {
		if filter.MatchString(s.Key) {
			scenarios = append(scenarios, s)
		}
	}
	rows, err := bench.Run(scenarios, *runs, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "troupe-bench:", err)
		os.Exit(1)
	}
	fmt.Printf("GOMAXPROCS=%d, %s, median of %d interleaved runs\n\n", runtime.GOMAXPROCS(0), runtime.Version(), *runs)
	if err := bench.WriteTable(os.Stdout, rows); err != nil {
		fmt.Fprintln(os.Stderr, "troupe-bench:", err)
		os.Exit(1)
	}
}

// scenarioKeys returns the keys of every scenario, in the order they run.
func scenarioKeys() []string {
	var keys []string
	for _, s := range bench.AllScenarios(bench.QuickSizes()) {
		keys = append(keys, s.Key)
	}
	return keys
}
