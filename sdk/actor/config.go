package actor

import (
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"time"

	"github.com/troupehq/troupe/sdk/internal/conf"
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
	conf.Default(&c.Logger, d.Logger)
	conf.Default(&c.RequestTimeout, d.RequestTimeout)
	conf.Default(&c.DeadLetterLogInterval, d.DeadLetterLogInterval)
	conf.Default(&c.DeadLetterLogBurst, d.DeadLetterLogBurst)
	conf.Default(&c.SupervisorStrategy, d.SupervisorStrategy)
	conf.Default(&c.Throughput, d.Throughput)
	conf.Default(&c.IdleWorkers, d.IdleWorkers)
	if err := errors.Join(
		conf.NotNegative("RequestTimeout", c.RequestTimeout),
		conf.NotNegative("DeadLetterLogInterval", c.DeadLetterLogInterval),
		conf.NotNegative("Throughput", c.Throughput),
		conf.NotNegative("IdleWorkers", c.IdleWorkers),
	); err != nil {
		return c, fmt.Errorf("actor: invalid config: %w", err)
	}
	return c, nil
}
