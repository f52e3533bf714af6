package actor

import (
	"fmt"
	"time"
)

// Directive is a supervisor's decision about a failed child.
type Directive int

const (
	// DirectiveResume keeps the child's state and goes on with the next
	// message; the failed message is dropped. A child whose producer failed
	// on restart has no state to keep: it is restarted instead.
	DirectiveResume Directive = iota
	// DirectiveRestart replaces the child with a fresh instance from its
	// producer (its children are stopped first); queued messages are kept.
	DirectiveRestart
	// DirectiveStop stops the child.
	DirectiveStop
	// DirectiveEscalate fails the supervisor itself with the same reason,
	// for its own supervisor to decide.
	DirectiveEscalate
)

// String returns the directive's name.
func (d Directive) String() string {
	switch d {
	case DirectiveResume:
		return "resume"
	case DirectiveRestart:
		return "restart"
	case DirectiveStop:
		return "stop"
	case DirectiveEscalate:
		return "escalate"
	}
	return fmt.Sprintf("Directive(%d)", int(d))
}

// Decider maps a failure reason (the recovered panic value) to a directive.
type Decider func(reason any) Directive

// DefaultDecider restarts on every failure.
func DefaultDecider(any) Directive { return DirectiveRestart }

// Supervisor is what a strategy acts on: the parent of the failed child (or
// the system's guardian for top-level actors). Children and
// EscalateFailure touch the supervisor's state: call them only within
// HandleFailure. RestartChildren, StopChildren and ResumeChildren only send
// messages and may be called later, from any goroutine (as a backoff
// strategy does from a timer).
type Supervisor interface {
	// Children returns the supervisor's children.
	Children() []*PID
	// EscalateFailure fails the supervisor itself.
	EscalateFailure(reason any, message any)
	// RestartChildren restarts the given children.
	RestartChildren(pids ...*PID)
	// StopChildren stops the given children.
	StopChildren(pids ...*PID)
	// ResumeChildren resumes the given children; one whose producer
	// failed on restart is restarted instead (it has no instance to
	// resume).
	ResumeChildren(pids ...*PID)
}

// SupervisorStrategy decides what happens to a child whose Receive panicked.
// A parent's strategy is set with WithSupervisor on the parent's props; the
// system's (Config.SupervisorStrategy) supervises top-level actors.
type SupervisorStrategy interface {
	// HandleFailure decides what happens to child, which failed with
	// reason (the recovered panic value) while processing message. It runs
	// on the supervisor's goroutine; stats holds the child's failures.
	HandleFailure(sys *System, sup Supervisor, child *PID, stats *RestartStatistics, reason any, message any)
}

// RestartStatistics records a child's failures. It belongs to the child and
// is handed to its supervisor's strategy with each failure; only one
// strategy call touches it at a time.
type RestartStatistics struct {
	failures []time.Time
	// noInstance says the failure being decided is the producer's, on
	// restart: the child has no instance to resume. The supervisor sets it
	// from the failure, on its own goroutine, before each decision; the
	// child never touches it, as it may restart again (an all-for-one
	// sibling's restart) while its supervisor decides.
	noInstance bool
}

// Fail records a failure now.
func (rs *RestartStatistics) Fail() { rs.failures = append(rs.failures, time.Now()) }

// Reset forgets every failure.
func (rs *RestartStatistics) Reset() { rs.failures = rs.failures[:0] }

// FailureCount returns the number of failures recorded.
func (rs *RestartStatistics) FailureCount() int { return len(rs.failures) }

// NumberOfFailures returns the number of failures within the last d, and
// forgets older ones.
func (rs *RestartStatistics) NumberOfFailures(d time.Duration) int {
	cutoff := time.Now().Add(-d)
	i := 0
	for i < len(rs.failures) && rs.failures[i].Before(cutoff) {
		i++
	}
	rs.failures = append(rs.failures[:0], rs.failures[i:]...)
	return len(rs.failures)
}

// OneForOneStrategy applies the decider's directive to the failed child
// only. A child restarted more than maxRestarts times within window is
// stopped instead (maxRestarts 0: never restart; window 0: count forever).
// A Resume of a child whose producer failed on restart is a Restart, of
// that child only, and counts as one.
func OneForOneStrategy(maxRestarts int, window time.Duration, decider Decider) SupervisorStrategy {
	return &restartStrategy{maxRestarts: maxRestarts, window: window, decider: decider}
}

// AllForOneStrategy applies the decider's directive to all the supervisor's
// children when one fails (Resume still resumes only the failed child).
// Restart limits are as for OneForOneStrategy, counted on the failed child.
func AllForOneStrategy(maxRestarts int, window time.Duration, decider Decider) SupervisorStrategy {
	return &restartStrategy{maxRestarts: maxRestarts, window: window, decider: decider, all: true}
}

// DefaultSupervisorStrategy restarts a failed actor, up to 10 times within
// 10 seconds, then stops it.
func DefaultSupervisorStrategy() SupervisorStrategy {
	return OneForOneStrategy(10, 10*time.Second, DefaultDecider)
}

type restartStrategy struct {
	maxRestarts int
	window      time.Duration
	decider     Decider
	all         bool
}

func (s *restartStrategy) HandleFailure(sys *System, sup Supervisor, child *PID, stats *RestartStatistics, reason any, message any) {
	d := DirectiveRestart
	if s.decider != nil {
		d = s.decider(reason)
	}
	// A child without an instance (its producer failed on restart) has
	// nothing to resume: it is restarted, alone, as the Resume would have
	// left its siblings alone.
	alone := d == DirectiveResume && stats.noInstance
	if alone {
		d = DirectiveRestart
	}
	if d == DirectiveRestart && !s.mayRestart(stats) {
		d = DirectiveStop
	}
	targets := []*PID{child}
	if s.all && !alone && (d == DirectiveRestart || d == DirectiveStop) {
		targets = sup.Children()
	}
	sys.publishSupervision(child, reason, d)
	apply(sup, d, targets, reason, message)
}

func (s *restartStrategy) mayRestart(stats *RestartStatistics) bool {
	if s.maxRestarts <= 0 {
		return false
	}
	stats.Fail()
	n := stats.FailureCount()
	if s.window > 0 {
		n = stats.NumberOfFailures(s.window)
	}
	return n <= s.maxRestarts
}

func apply(sup Supervisor, d Directive, targets []*PID, reason, message any) {
	switch d {
	case DirectiveResume:
		sup.ResumeChildren(targets...)
	case DirectiveRestart:
		sup.RestartChildren(targets...)
	case DirectiveStop:
		sup.StopChildren(targets...)
	case DirectiveEscalate:
		sup.EscalateFailure(reason, message)
	}
}

// ExponentialBackoffStrategy restarts a failed child after a delay that
// starts at initial and doubles with each failure, up to max. After a quiet
// period of reset without failures, the delay starts over at initial.
func ExponentialBackoffStrategy(initial, max, reset time.Duration) SupervisorStrategy {
	return &backoffStrategy{initial: initial, max: max, reset: reset}
}

// maxBackoffFailures bounds the failures a backoff strategy remembers of a
// child that keeps failing: 2^63 times any initial delay is past any max.
const maxBackoffFailures = 64

type backoffStrategy struct {
	initial, max, reset time.Duration
}

func (s *backoffStrategy) HandleFailure(sys *System, sup Supervisor, child *PID, stats *RestartStatistics, reason any, _ any) {
	if n := len(stats.failures); n > 0 && time.Since(stats.failures[n-1]) >= s.reset {
		stats.Reset() // a quiet period of reset without failures: start over
	} else if n >= maxBackoffFailures {
		// The delay reached max long ago: keep the count, not every time.
		stats.failures = append(stats.failures[:0], stats.failures[n-maxBackoffFailures+1:]...)
	}
	stats.Fail()
	delay := s.delay(stats.FailureCount())
	sys.publishSupervision(child, reason, DirectiveRestart)
	time.AfterFunc(delay, func() { sup.RestartChildren(child) })
}

// delay returns the delay before the restart that follows the n-th
// consecutive failure (n >= 1).
func (s *backoffStrategy) delay(n int) time.Duration {
	d := s.initial
	for i := 1; i < n && d < s.max; i++ {
		d *= 2
	}
	return min(d, s.max)
}

// guardian supervises top-level actors with the system's strategy.
type guardian struct {
	sys *System
}

// handleFailure runs on the failed actor's goroutine, within the recovery
// of its panic: a panic of the strategy here would end the process, so it
// is recovered, and the actor stopped as if the failure were escalated.
func (g *guardian) handleFailure(child *PID, stats *RestartStatistics, reason, message any) {
	defer func() {
		if r := recover(); r != nil {
			g.sys.logger.Error("actor: supervisor strategy panicked; stopping the actor", "pid", child.Id, "reason", reason, "panic", r)
			g.sys.Stop(child)
		}
	}()
	g.sys.cfg.SupervisorStrategy.HandleFailure(g.sys, guardianFor{g.sys, child}, child, stats, reason, message)
}

// guardianFor is the Supervisor of one failed top-level actor.
type guardianFor struct {
	sys   *System
	child *PID
}

func (g guardianFor) Children() []*PID { return g.sys.topLevel() }

// EscalateFailure at the top has nowhere to go: the actor is stopped.
func (g guardianFor) EscalateFailure(reason any, _ any) {
	g.sys.logger.Error("actor: failure escalated past the top level; stopping the actor", "pid", g.child.Id, "reason", reason)
	g.sys.Stop(g.child)
}

func (g guardianFor) RestartChildren(pids ...*PID) { g.sys.sendSystemEach(pids, restartSys) }

func (g guardianFor) StopChildren(pids ...*PID) { g.sys.sendSystemEach(pids, stopSys) }

func (g guardianFor) ResumeChildren(pids ...*PID) { g.sys.sendSystemEach(pids, resumeSys) }
