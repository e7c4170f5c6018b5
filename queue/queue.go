package queue

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"go.etcd.io/bbolt"
)

// Errors returned by the queue. Callers classify with errors.Is.
var (
	// ErrNotFound is returned for an unknown (or pruned) notification or job.
	ErrNotFound = errors.New("queue: not found")
	// ErrClosed is returned by every call made after Close.
	ErrClosed = errors.New("queue: closed")
	// ErrInvalid is returned for a malformed argument (an oversized key,
	// a cancel filter with neither tag nor sub tag, ...).
	ErrInvalid = errors.New("queue: invalid argument")
	// ErrStorage wraps a transaction the database file could not take
	// (disk full, file-size limit, read-only or failing file system):
	// nothing of the call was stored, and it may succeed later.
	ErrStorage = errors.New("queue: storage unavailable")
)

// Job states reported by Status.
const (
	StateQueued    = "queued"
	StateSending   = "sending"
	StateDelivered = "delivered"
	StateRetrying  = "retrying"
	StateDead      = "dead"
	StateDropped   = "dropped"
	StateCancelled = "cancelled"
	StateCollapsed = "collapsed"
	StateExpired   = "expired"
)

// Dead-letter reasons set by the queue itself.
const (
	ReasonExpired     = "expired"
	ReasonMaxAttempts = "max_attempts"
)

// Job is one notification to one device.
type Job struct {
	ID             string    // assigned by Enqueue/Submit when empty; time-ordered, unique
	NotificationID string    // groups the jobs of one API notification (for Status)
	User           string    // recipient user id
	DeviceID       string    // recipient device id in the registry
	Platform       string    // "apns" | "fcm" | ...
	AppID          string    // application the device token belongs to
	Token          string    // device token (never logged in full)
	Sandbox        bool      // APNs development environment
	Tag, SubTag    string    // cancel by user+tag / user+sub_tag; collapse by user+sub_tag
	Payload        []byte    // opaque to the queue
	CreatedAt      time.Time // set by Enqueue when zero
	NotBefore      time.Time // deferred sending (send_at); zero = now
	ExpiresAt      time.Time // zero = never; a job past it is never leased: dead "expired"
	Attempts       int       // failed delivery attempts so far
	NextAttempt    time.Time // when it is due
	LastError      string    // reason given to the last Retry/Dead/Drop
	// Origin says where a job came from when that matters after delivery:
	// opaque to the queue ("" for API pushes; the Bitrix relay stores the
	// portal host here so that dead tokens can be reported back to it).
	Origin string
}

// Options configure a Queue. The zero value of each field means its default.
type Options struct {
	Now               func() time.Time // default time.Now
	Random            func() float64   // jitter source in [0,1); default math/rand/v2.Float64
	BackoffBase       time.Duration    // default 1s
	BackoffCap        time.Duration    // default 30m
	MaxAttempts       int              // default 25; then dead "max_attempts"
	LeaseTimeout      time.Duration    // default 60s: a leased job not settled by then is due again
	MaxBatch          int              // max jobs/records per group-commit transaction, default 10000 (one larger call is committed alone, never split)
	DeadRetention     time.Duration    // default 7*24h
	DeadMax           int              // default 100000 (oldest pruned first)
	StatusRetention   time.Duration    // default 24h (per-notification status records)
	IdempotencyWindow time.Duration    // default 24h
	PruneInterval     time.Duration    // default 1m
	Logger            *slog.Logger     // default slog.Default()
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
		{"PruneInterval", o.PruneInterval},
	}
	for _, d := range durs {
		if d.v < 0 {
			return fmt.Errorf("queue: Options.%s must not be negative, got %v: %w", d.name, d.v, ErrInvalid)
		}
	}
	ints := []struct {
		name string
		v    int
	}{{"MaxAttempts", o.MaxAttempts}, {"MaxBatch", o.MaxBatch}, {"DeadMax", o.DeadMax}}
	for _, i := range ints {
		if i.v < 0 {
			return fmt.Errorf("queue: Options.%s must not be negative, got %d: %w", i.name, i.v, ErrInvalid)
		}
	}
	if o.BackoffBase > 0 && o.BackoffCap > 0 && o.BackoffCap < o.BackoffBase {
		return fmt.Errorf("queue: Options.BackoffCap (%v) must be >= BackoffBase (%v): %w", o.BackoffCap, o.BackoffBase, ErrInvalid)
	}
	return nil
}

// Submission is a set of jobs stored under an idempotency key together with
// the answer the caller gave for them.
type Submission struct {
	IdempotencyKey string // empty: no idempotency, Submit acts as Enqueue
	Result         []byte // stored with the key, returned to duplicates
	Jobs           []*Job
}

// CancelFilter selects queued jobs to cancel. At least one of Tag and
// SubTag must be set; when both are, a job must match both.
type CancelFilter struct {
	Users       []string // empty = all users
	Tag, SubTag string
}

// JobStatus is the last known state of one job of a notification.
type JobStatus struct {
	JobID, DeviceID, User, Platform, AppID, State, LastError string
	Attempts                                                 int
	NextAttempt, UpdatedAt                                   time.Time
}

// Stats is a snapshot of the queue depth and of counters since Open.
type Stats struct {
	Due          int           // queued jobs whose NextAttempt has come, not leased
	Deferred     int           // queued jobs not due yet
	InFlight     int           // leased, not settled
	Dead         int           // dead letters stored
	OldestDueAge time.Duration // how long the oldest due job has waited
	Expired      uint64        // jobs dead-lettered as expired since Open
	Delivered    uint64        // jobs acked since Open
	Retried      uint64        // Retry calls that rescheduled a job since Open
	DeadTotal    uint64        // jobs dead-lettered since Open (expired included)
}

// DeadJob is a dead letter: a job that will not be retried by itself.
type DeadJob struct {
	Job
	Reason string
	DiedAt time.Time
}

var _ = bbolt.Open
var _ = context.Background
