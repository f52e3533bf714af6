package actor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// Config configures an actor System. Zero fields take the documented
// defaults; see DefaultConfig.
type Config struct {
	// Logger receives the runtime's logs. Default: slog.Default().
	Logger *slog.Logger
	// RequestTimeout applies to RequestFuture calls given no timeout.
	// Default: 5s.
	RequestTimeout time.Duration
	// DeadLetterLogInterval and DeadLetterLogBurst throttle the dead-letter
	// log: at most DeadLetterLogBurst lines per interval; the rest are
	// counted in one summary line. Defaults: 1s and 10. A negative burst
	// turns dead-letter logging off (events are still published).
	DeadLetterLogInterval time.Duration
	DeadLetterLogBurst    int
	// SupervisorStrategy supervises top-level actors and is the default for
	// actors whose props set none. Default: DefaultSupervisorStrategy().
	SupervisorStrategy SupervisorStrategy
	// Throughput is how many messages an actor processes before yielding
	// the processor, for actors whose props set no dispatcher. Default:
	// DefaultThroughput (300).
	Throughput int
	// IdleWorkers caps the goroutines the system keeps parked between
	// mailbox runs, for actors whose props set no dispatcher. Reusing them
	// spares each run a fresh stack that must grow; busy workers are never
	// capped. Default: 4 × GOMAXPROCS.
	IdleWorkers int
}

// DefaultConfig returns the configuration used for zero fields.
func DefaultConfig() Config {
	return Config{
		Logger:                slog.Default(),
		RequestTimeout:        5 * time.Second,
		DeadLetterLogInterval: time.Second,
		DeadLetterLogBurst:    10,
		SupervisorStrategy:    DefaultSupervisorStrategy(),
		Throughput:            DefaultThroughput,
		IdleWorkers:           4 * runtime.GOMAXPROCS(0),
	}
}

// withDefaults fills zero fields and validates the rest.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Logger == nil {
		c.Logger = d.Logger
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = d.RequestTimeout
	}
	if c.DeadLetterLogInterval == 0 {
		c.DeadLetterLogInterval = d.DeadLetterLogInterval
	}
	if c.DeadLetterLogBurst == 0 {
		c.DeadLetterLogBurst = d.DeadLetterLogBurst
	}
	if c.SupervisorStrategy == nil {
		c.SupervisorStrategy = d.SupervisorStrategy
	}
	if c.Throughput == 0 {
		c.Throughput = d.Throughput
	}
	if c.IdleWorkers == 0 {
		c.IdleWorkers = d.IdleWorkers
	}
	var errs []error
	if c.RequestTimeout < 0 {
		errs = append(errs, fmt.Errorf("RequestTimeout must not be negative, got %v", c.RequestTimeout))
	}
	if c.DeadLetterLogInterval < 0 {
		errs = append(errs, fmt.Errorf("DeadLetterLogInterval must not be negative, got %v", c.DeadLetterLogInterval))
	}
	if c.Throughput < 0 {
		errs = append(errs, fmt.Errorf("Throughput must be positive, got %d", c.Throughput))
	}
	if c.IdleWorkers < 0 {
		errs = append(errs, fmt.Errorf("IdleWorkers must not be negative, got %d", c.IdleWorkers))
	}
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("actor: invalid config: %w", err)
	}
	return c, nil
}
