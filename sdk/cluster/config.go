package cluster

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/troupehq/troupe/sdk/actor"
	"github.com/troupehq/troupe/sdk/internal/conf"
)

// Kind is a type of grain a member hosts.
type Kind struct {
	// Name identifies the kind across the cluster. It must not contain "/".
	Name string
	// Props create the grain's actor. The grain receives *actor.Started
	// when activated (its Init) and *actor.Stopping when passivated or
	// shut down (its Terminate); cluster.IdentityOf(c.Self()) tells it who
	// it is.
	Props *actor.Props
	// IdleTimeout passivates an activation that received no message for
	// this long; the next message activates the grain again. 0 never
	// passivates.
	IdleTimeout time.Duration
	// Placement chooses the member a new activation starts on; nil starts
	// it on the identity's owner.
	Placement Placement
}

// Placement chooses where a new activation starts.
type Placement interface {
	// Place returns the ID of the member that hosts a new activation of id,
	// among candidates (the members that host id's kind, sorted by ID).
	// owner is the identity's owner. It runs on the owner's identity
	// actor, so it must not block; if it panics, that activation fails
	// with ErrActivationFailed.
	Place(id ClusterIdentity, owner string, candidates []Member) string
}

// Config configures a Cluster. Zero fields take the documented defaults.
type Config struct {
	// Membership tells the cluster who the members are. Required.
	Membership Membership
	// Kinds this member hosts; a member without kinds is a client: it calls
	// grains but never owns or hosts them.
	Kinds []Kind
	// RetryBackoff is the first wait before retrying a grain call that
	// failed for a transport or ownership reason; each retry doubles it up
	// to MaxRetryBackoff. Defaults 5ms and 500ms (or RetryBackoff, if that
	// is set larger and MaxRetryBackoff is not); RetryBackoff must not
	// exceed MaxRetryBackoff. Retries continue until the call's context
	// ends.
	RetryBackoff    time.Duration
	MaxRetryBackoff time.Duration
	// HandoverTimeout bounds how long a new owner waits for every member to
	// report its activations after a topology change, before it answers
	// for the identities that moved to it anyway. Default 5s.
	HandoverTimeout time.Duration
	// PlacementTimeout bounds an owner's wait for another member to start
	// an activation (with a Placement other than the owner). It also bounds
	// a reroute: a message sent with Send that reached an activation after
	// it passivated (the sender's cache was stale) is re-sent by the host to
	// the grain's current activation, finding it within PlacementTimeout or
	// being dropped (and logged). Default 5s.
	PlacementTimeout time.Duration
	// LeaveTimeout bounds Close's deregistration from the Membership, so
	// that an unreachable source of truth cannot make Close hang. (Shutdown
	// deregisters within its own context.) Default 5s.
	LeaveTimeout time.Duration
	// PIDCacheSize bounds how many activations' locations the member's
	// cache remembers. Past it, storing a new entry forgets an arbitrary
	// one; a call whose entry was forgotten goes through the grain's owner,
	// as on a first call. Default 100000.
	PIDCacheSize int
	// MaxDepartedMembers bounds how many IDs of members that left this
	// member remembers, to refuse them if the Membership reports them again
	// (a stale source, or a member declared dead that is not). Past it, the
	// IDs of the longest gone are forgotten. Default 10000.
	MaxDepartedMembers int
	// Metrics receives cluster measurements. Default: none.
	Metrics Metrics
}

// DefaultConfig returns the values used for zero fields.
func DefaultConfig() Config {
	return Config{
		RetryBackoff:       5 * time.Millisecond,
		MaxRetryBackoff:    500 * time.Millisecond,
		HandoverTimeout:    5 * time.Second,
		PlacementTimeout:   5 * time.Second,
		LeaveTimeout:       5 * time.Second,
		PIDCacheSize:       100_000,
		MaxDepartedMembers: 10_000,
		Metrics:            NopMetrics{},
	}
}

func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	conf.Default(&c.RetryBackoff, d.RetryBackoff)
	conf.Default(&c.MaxRetryBackoff, max(d.MaxRetryBackoff, c.RetryBackoff))
	conf.Default(&c.HandoverTimeout, d.HandoverTimeout)
	conf.Default(&c.PlacementTimeout, d.PlacementTimeout)
	conf.Default(&c.LeaveTimeout, d.LeaveTimeout)
	conf.Default(&c.PIDCacheSize, d.PIDCacheSize)
	conf.Default(&c.MaxDepartedMembers, d.MaxDepartedMembers)
	conf.Default(&c.Metrics, d.Metrics)
	var errs []error
	if c.Membership == nil {
		errs = append(errs, errors.New("Membership is required"))
	}
	seen := map[string]bool{}
	for _, k := range c.Kinds {
		switch {
		case k.Name == "":
			errs = append(errs, errors.New("a kind has no name"))
		case strings.Contains(k.Name, "/"):
			errs = append(errs, fmt.Errorf("kind %q: names must not contain '/'", k.Name))
		case seen[k.Name]:
			errs = append(errs, fmt.Errorf("kind %q registered twice", k.Name))
		case k.Props == nil:
			errs = append(errs, fmt.Errorf("kind %q has no props", k.Name))
		case k.IdleTimeout < 0:
			errs = append(errs, fmt.Errorf("kind %q: IdleTimeout must not be negative", k.Name))
		}
		seen[k.Name] = true
	}
	errs = append(errs,
		conf.NotNegative("HandoverTimeout", c.HandoverTimeout),
		conf.NotNegative("PlacementTimeout", c.PlacementTimeout),
		conf.NotNegative("LeaveTimeout", c.LeaveTimeout),
		checkBackoff("RetryBackoff", "MaxRetryBackoff", c.RetryBackoff, c.MaxRetryBackoff),
		conf.NotNegative("PIDCacheSize", c.PIDCacheSize),
		conf.NotNegative("MaxDepartedMembers", c.MaxDepartedMembers))
	if err := errors.Join(errs...); err != nil {
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	return c, nil
}

// checkBackoff reports a retry backoff that is not positive or whose first
// wait exceeds its maximum; firstName and maxName name the two values.
func checkBackoff(firstName, maxName string, first, maxBackoff time.Duration) error {
	switch {
	case first <= 0 || maxBackoff <= 0:
		return fmt.Errorf("%s and %s must be positive, got %v and %v", firstName, maxName, first, maxBackoff)
	case first > maxBackoff:
		return fmt.Errorf("%s (%v) must not exceed %s (%v)", firstName, first, maxName, maxBackoff)
	}
	return nil
}

// Metrics receives cluster measurements. Implementations must be fast and
// safe for concurrent use.
type Metrics interface {
	// Activated reports an activation started on this member.
	Activated(kind string)
	// Passivated reports an activation of this member that stopped.
	Passivated(kind string)
	// HandoverCompleted reports the end of this member's handover of a
	// topology: how long it took, and whether HandoverTimeout cut it short.
	HandoverCompleted(d time.Duration, timedOut bool)
	// GrainCall reports a Request to a grain made from this member, its
	// latency until the answer and its outcome (nil on success). Send and
	// Get, which wait for no answer of the grain, are not reported.
	GrainCall(kind string, d time.Duration, err error)
	// Retry reports an attempt of a Request, Send or Get that will be
	// retried.
	Retry(kind string)
	// CacheLookup reports a look-up of the activation cache.
	CacheLookup(kind string, hit bool)
}

// NopMetrics discards every measurement.
type NopMetrics struct{}

// Activated does nothing.
func (NopMetrics) Activated(string) {}

// Passivated does nothing.
func (NopMetrics) Passivated(string) {}

// HandoverCompleted does nothing.
func (NopMetrics) HandoverCompleted(time.Duration, bool) {}

// GrainCall does nothing.
func (NopMetrics) GrainCall(string, time.Duration, error) {}

// Retry does nothing.
func (NopMetrics) Retry(string) {}

// CacheLookup does nothing.
func (NopMetrics) CacheLookup(string, bool) {}
