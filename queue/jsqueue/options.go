package jsqueue

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"time"

	"github.com/pushpull/pushpull/queue"
)

// Options configure a Queue. The zero value of each field selects its
// default; the names and subjects must be the same on every node.
type Options struct {
	JobsStream   string // default "PUSHPULL_JOBS"
	DeadStream   string // default "PUSHPULL_DEAD"
	StatusBucket string // KV, default "pushpull_status"
	IdemBucket   string // KV, default "pushpull_idem"
	Consumer     string // durable pull consumer on JobsStream, default "dispatch"
	// Subject is the prefix of every subject the queue uses:
	// <Subject>.jobs.>, <Subject>.dead.> and <Subject>.wake. Default "pushpull".
	Subject  string
	Replicas int // stream and bucket replicas, default 1

	Now               func() time.Time // default time.Now
	Random            func() float64   // jitter source in [0,1); default math/rand/v2.Float64
	BackoffBase       time.Duration    // default 1s
	BackoffCap        time.Duration    // default 30m
	MaxAttempts       int              // default 25; then dead "max_attempts"
	LeaseTimeout      time.Duration    // consumer AckWait, default 60s
	DeadRetention     time.Duration    // dead stream MaxAge, default 7*24h
	DeadMax           int              // dead stream MaxMsgs, default 100000 (oldest dropped first)
	StatusRetention   time.Duration    // status bucket TTL, default 24h
	IdempotencyWindow time.Duration    // idempotency bucket TTL, default 24h
	// PendingTimeout is how long a Submit that found its idempotency key
	// claimed by another Submit still in progress waits before it takes
	// the claim over (the first one is taken to have died). Default 30s.
	PendingTimeout time.Duration
	// PollInterval bounds NextDue: jobs retried or deferred by another
	// node become due without a signal here, so an idle dispatcher looks
	// again at least this often. Default 1s.
	PollInterval time.Duration
	Logger       *slog.Logger // default slog.Default()
}

// Validate reports the first option that is out of range, naming it.
// Zero values are valid: they select the defaults.
func (o Options) Validate() error {
	durs := []struct {
		name string
		v    time.Duration
	}{
		{"BackoffBase", o.BackoffBase}, {"BackoffCap", o.BackoffCap},
		{"LeaseTimeout", o.LeaseTimeout}, {"DeadRetention", o.DeadRetention},
		{"StatusRetention", o.StatusRetention}, {"IdempotencyWindow", o.IdempotencyWindow},
		{"PendingTimeout", o.PendingTimeout}, {"PollInterval", o.PollInterval},
	}
	for _, d := range durs {
		if d.v < 0 {
			return fmt.Errorf("jsqueue: Options.%s must not be negative, got %v: %w", d.name, d.v, queue.ErrInvalid)
		}
	}
	ints := []struct {
		name string
		v    int
	}{{"MaxAttempts", o.MaxAttempts}, {"DeadMax", o.DeadMax}, {"Replicas", o.Replicas}}
	for _, i := range ints {
		if i.v < 0 {
			return fmt.Errorf("jsqueue: Options.%s must not be negative, got %d: %w", i.name, i.v, queue.ErrInvalid)
		}
	}
	if o.Replicas > 5 {
		return fmt.Errorf("jsqueue: Options.Replicas must be at most 5, got %d: %w", o.Replicas, queue.ErrInvalid)
	}
	if o.BackoffBase > 0 && o.BackoffCap > 0 && o.BackoffCap < o.BackoffBase {
		return fmt.Errorf("jsqueue: Options.BackoffCap (%v) must be >= BackoffBase (%v): %w", o.BackoffCap, o.BackoffBase, queue.ErrInvalid)
	}
	if o.LeaseTimeout > 0 && o.LeaseTimeout < time.Second/10 {
		return fmt.Errorf("jsqueue: Options.LeaseTimeout must be at least 100ms, got %v: %w", o.LeaseTimeout, queue.ErrInvalid)
	}
	return nil
}

func (o Options) withDefaults() Options {
	def := func(s *string, v string) {
		if *s == "" {
			*s = v
		}
	}
	def(&o.JobsStream, "PUSHPULL_JOBS")
	def(&o.DeadStream, "PUSHPULL_DEAD")
	def(&o.StatusBucket, "pushpull_status")
	def(&o.IdemBucket, "pushpull_idem")
	def(&o.Consumer, "dispatch")
	def(&o.Subject, "pushpull")
	dur := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	dur(&o.BackoffBase, time.Second)
	dur(&o.BackoffCap, 30*time.Minute)
	dur(&o.LeaseTimeout, time.Minute)
	dur(&o.DeadRetention, 7*24*time.Hour)
	dur(&o.StatusRetention, 24*time.Hour)
	dur(&o.IdempotencyWindow, 24*time.Hour)
	dur(&o.PendingTimeout, 30*time.Second)
	dur(&o.PollInterval, time.Second)
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 25
	}
	if o.DeadMax == 0 {
		o.DeadMax = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Random == nil {
		o.Random = rand.Float64
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
