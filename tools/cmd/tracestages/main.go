// Command tracestages lines up the execution traces of a latency scenario's
// processes and shows where a round trip spends its time.
//
// Run a latency scenario once with TROUPE_BENCH_TRACE set to a directory
// (see package bench): each process writes an execution trace there, and
// the process that makes the requests logs the start and end of each. The
// traces share the machine's monotonic clock, so their events merge into
// one timeline:
//
//	TROUPE_BENCH_TRACE=/tmp/traces go run ./bench/cmd/troupe-bench -only remote-request -runs 1
//	go run ./tools/cmd/tracestages /tmp/traces/remote-request-troupe.trace /tmp/traces/node2-troupe.trace
//
// It prints the requests' p50 and p99, how many goroutine wake-ups,
// processor starts and system calls each process made per request, and the
// merged timeline of the requests nearest a quantile (-q; the median by
// default, -q 0.99 for the tail): every goroutine and
// processor state change in either process, with the goroutine's name (the
// first frame of its stacks outside the runtime and standard library) and
// where it was.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/exp/trace"
)

// requestCategory is the log category with which bench marks each request
// (bench's traceCategory), and its two messages.
const (
	requestCategory = "troupe-bench/request"
	requestStart    = "start"
	requestEnd      = "end"
)

func main() {
	n := flag.Int("n", 1, "print the timelines of this many requests nearest the quantile -q")
	q := flag.Float64("q", 0.5, "the quantile (0 to 1) of request duration whose nearest requests' timelines are printed: 0.5 for the median, 0.99 for the tail")
	flag.Usage = func() {
		fmt.Fprintf(flag.CommandLine.Output(), "usage: tracestages [-n N] [-q Q] TRACE...\n\n")
		flag.PrintDefaults()
	}
	flag.Parse()
	if flag.NArg() == 0 || *q < 0 || *q > 1 {
		flag.Usage()
		os.Exit(2)
	}
	var procs []*process
	for _, path := range flag.Args() {
		p, err := load(path)
		if err != nil {
			fmt.Fprintln(os.Stderr, "tracestages:", err)
			os.Exit(1)
		}
		procs = append(procs, p)
	}
	if err := report(os.Stdout, procs, *n, *q); err != nil {
		fmt.Fprintln(os.Stderr, "tracestages:", err)
		os.Exit(1)
	}
}

// process is what one trace says.
type process struct {
	label    string
	events   []event
	names    map[trace.GoID]string
	requests []span // from the request marks, if this process made them
}

// event is a state change of a goroutine or a processor.
type event struct {
	at     trace.Time
	proc   *process
	g      trace.GoID // the goroutine that changed state, or NoGoroutine
	thread trace.ThreadID
	kind   eventKind
	text   string
}

type eventKind int

const (
	otherChange eventKind = iota
	wakeUp                // a waiting goroutine became runnable
	procStart             // an idle processor started running
	syscall               // a goroutine entered a system call
)

type span struct{ start, end trace.Time }

func (s span) duration() trace.Time { return s.end - s.start }

// load reads a trace: its goroutine and processor state changes, the names
// of its goroutines and its requests.
func load(path string) (*process, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r, err := trace.NewReader(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p := &process{label: strings.TrimSuffix(filepath.Base(path), ".trace"), names: map[trace.GoID]string{}}
	var open *trace.Time
	for {
		e, err := r.ReadEvent()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		switch e.Kind() {
		case trace.EventLog:
			l := e.Log()
			switch {
			case l.Category != requestCategory:
			case l.Message == requestStart:
				t := e.Time()
				open = &t
			case l.Message == requestEnd && open != nil:
				p.requests = append(p.requests, span{*open, e.Time()})
				open = nil
			}
		case trace.EventStateTransition:
			p.transition(e)
		}
	}
	return p, nil
}

// transition records a state change and learns goroutine names from it.
func (p *process) transition(e trace.Event) {
	st := e.StateTransition()
	ev := event{at: e.Time(), proc: p, g: trace.NoGoroutine, thread: e.Thread()}
	switch st.Resource.Kind {
	case trace.ResourceGoroutine:
		from, to := st.Goroutine()
		ev.g = st.Resource.Goroutine()
		p.name(ev.g, st.Stack)
		if ev.g == e.Goroutine() {
			p.name(ev.g, e.Stack())
		}
		switch {
		case from == trace.GoWaiting && to == trace.GoRunnable:
			ev.kind = wakeUp
		case to == trace.GoSyscall:
			ev.kind = syscall
		}
		ev.text = fmt.Sprintf("G%d %v→%v", ev.g, from, to)
		if st.Reason != "" {
			ev.text += " (" + st.Reason + ")"
		}
		if by := e.Goroutine(); by != ev.g && by != trace.NoGoroutine {
			ev.text += fmt.Sprintf(" by G%d", by)
		}
		if at := frame(e.Stack()); at != "" {
			ev.text += " at " + at
		}
	case trace.ResourceProc:
		from, to := st.Proc()
		if from == trace.ProcIdle && to == trace.ProcRunning {
			ev.kind = procStart
		}
		ev.text = fmt.Sprintf("P%d %v→%v", st.Resource.Proc(), from, to)
	default:
		return
	}
	p.events = append(p.events, ev)
}

// name names g after the first frame of s outside the runtime and
// standard library, unless it has such a name already.
func (p *process) name(g trace.GoID, s trace.Stack) {
	if old, ok := p.names[g]; ok && !strings.HasPrefix(old, "(") {
		return
	}
	if fn := frame(s); fn != "" {
		p.names[g] = fn
	} else if _, ok := p.names[g]; !ok {
		p.names[g] = "(runtime)"
	}
}

// frame returns the first function of s outside the runtime and standard
// library, without its package path.
func frame(s trace.Stack) string {
	for f := range s.Frames() {
		if fn := f.Func; !standard(fn) {
			return fn[strings.LastIndex(fn, "/")+1:]
		}
	}
	return ""
}

// standard reports whether fn belongs to the standard library: the first
// element of its package path has no dot (and is not main).
func standard(fn string) bool {
	first, _, nested := strings.Cut(fn, "/")
	if !nested {
		pkg, _, _ := strings.Cut(fn, ".")
		return pkg != "main"
	}
	return !strings.Contains(first, ".")
}

// report prints the summary and the timelines of the n requests nearest
// quantile q of request duration.
func report(w io.Writer, procs []*process, n int, q float64) error {
	var requests []span
	for _, p := range procs {
		if len(p.requests) > 0 {
			requests = p.requests
			break
		}
	}
	if len(requests) == 0 {
		return fmt.Errorf("no requests marked (log category %q) in any trace", requestCategory)
	}
	byDuration := slices.Clone(requests)
	slices.SortFunc(byDuration, func(a, b span) int { return int(a.duration() - b.duration()) })
	fmt.Fprintf(w, "%d requests: p50 %.1f µs, p99 %.1f µs\n", len(requests),
		micros(byDuration[quantile(len(byDuration), 0.5)].duration()), micros(byDuration[quantile(len(byDuration), 0.99)].duration()))

	var all []event
	for _, p := range procs {
		all = append(all, p.events...)
	}
	slices.SortStableFunc(all, func(a, b event) int { return int(a.at - b.at) })

	fmt.Fprintf(w, "\nper request, in each process:\n")
	for _, p := range procs {
		var counts [syscall + 1]int
		for _, r := range requests {
			for _, e := range within(all, r) {
				if e.proc == p {
					counts[e.kind]++
				}
			}
		}
		per := func(k eventKind) float64 { return float64(counts[k]) / float64(len(requests)) }
		fmt.Fprintf(w, "  %-32s %5.2f goroutine wake-ups  %5.2f processor starts  %5.2f system calls\n",
			p.label, per(wakeUp), per(procStart), per(syscall))
	}

	width := 0
	for _, p := range procs {
		width = max(width, len(p.label))
	}
	// The n requests around quantile q, shifted to fit inside the list.
	from := max(min(quantile(len(byDuration), q)-n/2, len(byDuration)-n), 0)
	for _, r := range byDuration[from:min(from+n, len(byDuration))] {
		fmt.Fprintf(w, "\nrequest of %.1f µs (µs from its start):\n", micros(r.duration()))
		for _, e := range within(all, r) {
			who := ""
			if e.g != trace.NoGoroutine {
				who = e.proc.names[e.g]
			}
			fmt.Fprintf(w, "%8.1f  %-*s  M%-6d %-40s %s\n", micros(e.at-r.start), width, e.proc.label, e.thread, who, e.text)
		}
	}
	return nil
}

// quantile returns the index of quantile q (0 to 1) in a sorted list of n
// items, as bench reports its percentiles.
func quantile(n int, q float64) int { return int(float64(n-1) * q) }

// within returns the events of all (sorted by time) during r.
func within(all []event, r span) []event {
	i, _ := slices.BinarySearchFunc(all, r.start, func(e event, t trace.Time) int { return int(e.at - t) })
	j, _ := slices.BinarySearchFunc(all, r.end+1, func(e event, t trace.Time) int { return int(e.at - t) })
	return all[i:j]
}

func micros(t trace.Time) float64 { return float64(t) / 1e3 }
