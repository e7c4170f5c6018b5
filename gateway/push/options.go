package push

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"time"
)

// Defaults of Options.
const (
	DefaultLeaseBatch          = 500
	DefaultWorkers             = 4
	DefaultProviderConcurrency = 256
	DefaultSendTimeout         = 30 * time.Second
	DefaultExpiry              = 43200 * time.Second // the Bitrix default
	DefaultMaxExpiry           = 28 * 24 * time.Hour // FCM's longest TTL
	DefaultFeedbackTimeout     = 5 * time.Second
	DefaultFeedbackRetries     = 3
	DefaultFeedbackBackoff     = time.Second
	DefaultFeedbackQueue       = 1024
	DefaultPauseBase           = time.Second
	DefaultPauseCap            = 5 * time.Minute
	DefaultMaxIdle             = 30 * time.Second
)

// ErrInvalidOptions is wrapped by every error of Options.Validate.
var ErrInvalidOptions = errors.New("push: invalid options")

// Options configure a Service. The zero value of each field selects its
// documented default.
type Options struct {
	// LeaseBatch is how many jobs a worker leases at once. Default 500.
	LeaseBatch int
	// Workers is the number of dispatcher goroutines. Default 4.
	Workers int
	// ProviderConcurrency is the most pushes in flight per provider, over
	// all workers together. Default 256.
	ProviderConcurrency int
	// SendTimeout bounds one provider Send call (one chunk of a batch).
	// Default 30s.
	SendTimeout time.Duration
	// DefaultExpiry is how long a push stays useful when a notification
	// gives no expiry. Default 43200s (12 h, as Bitrix).
	DefaultExpiry time.Duration
	// MaxExpiry is the longest expiry, and the furthest send_at, a
	// notification may ask for. Default 28 days.
	MaxExpiry time.Duration

	// PauseBase and PauseCap bound the circuit breaker's pause of a
	// provider that answers "retry" for most of a batch: the n-th bad batch
	// in a row pauses it for min(PauseCap, PauseBase*2^(n-1)), or for the
	// provider's Retry-After (at most PauseCap) when it gave one. Defaults
	// 1s and 5m.
	PauseBase, PauseCap time.Duration
	// MaxIdle is the longest an idle worker waits before looking at the
	// queue again even without a wakeup: a safety net, not a poll. Default
	// 30s.
	MaxIdle time.Duration

	// FeedbackURL, when set, receives a POST for every token removed
	// because the provider called it invalid:
	// {"user","device_id","platform","token","reason"}.
	FeedbackURL string
	// FeedbackSecret signs feedback bodies: header
	// "X-Pushpull-Signature: sha256=<hex HMAC-SHA256 of the body>".
	FeedbackSecret []byte
	// FeedbackTimeout bounds one feedback POST. Default 5s.
	FeedbackTimeout time.Duration
	// FeedbackRetries is how many times a failed feedback POST is retried
	// (so 1+FeedbackRetries attempts). Default 3; negative means none.
	FeedbackRetries int
	// FeedbackBackoff is the delay before the first feedback retry,
	// doubled for each next one. Default 1s.
	FeedbackBackoff time.Duration
	// FeedbackQueue bounds the feedback reports waiting to be sent; past
	// it they are logged and dropped (the token is removed either way).
	// Default 1024.
	FeedbackQueue int
	// OnInvalidToken, when set, is called with every report that goes to
	// the feedback webhook (whether or not a webhook is configured), on the
	// dispatcher's goroutine: it must not block (hand the report to a
	// queue of your own). The Bitrix relay uses it to tell portals.
	OnInvalidToken func(Report)

	// IsOnline reports whether a user has a live connection; set by the
	// gateway from its presence. nil: nobody is online.
	IsOnline func(user string) bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per notable dispatch outcome (tokens
	// redacted). Default: discard.
	Logger *slog.Logger
}

// Validate reports the first option out of range, naming it. Zero values
// are valid: they select the defaults.
func (o Options) Validate() error {
	ints := []struct {
		name string
		v    int
	}{
		{"LeaseBatch", o.LeaseBatch}, {"Workers", o.Workers},
		{"ProviderConcurrency", o.ProviderConcurrency}, {"FeedbackQueue", o.FeedbackQueue},
	}
	for _, i := range ints {
		if i.v < 0 {
			return fmt.Errorf("%w: %s must not be negative, got %d", ErrInvalidOptions, i.name, i.v)
		}
	}
	durs := []struct {
		name string
		v    time.Duration
	}{
		{"SendTimeout", o.SendTimeout}, {"DefaultExpiry", o.DefaultExpiry},
		{"MaxExpiry", o.MaxExpiry}, {"PauseBase", o.PauseBase}, {"PauseCap", o.PauseCap},
		{"MaxIdle", o.MaxIdle}, {"FeedbackTimeout", o.FeedbackTimeout},
		{"FeedbackBackoff", o.FeedbackBackoff},
	}
	for _, d := range durs {
		if d.v < 0 {
			return fmt.Errorf("%w: %s must not be negative, got %v", ErrInvalidOptions, d.name, d.v)
		}
	}
	d := o.withDefaults()
	if d.DefaultExpiry > d.MaxExpiry {
		return fmt.Errorf("%w: DefaultExpiry (%v) must not exceed MaxExpiry (%v)", ErrInvalidOptions, d.DefaultExpiry, d.MaxExpiry)
	}
	if d.PauseCap < d.PauseBase {
		return fmt.Errorf("%w: PauseCap (%v) must be >= PauseBase (%v)", ErrInvalidOptions, d.PauseCap, d.PauseBase)
	}
	if o.FeedbackURL != "" {
		u, err := url.Parse(o.FeedbackURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: FeedbackURL must be an absolute http(s) URL, got %q", ErrInvalidOptions, o.FeedbackURL)
		}
	}
	return nil
}

func (o Options) withDefaults() Options {
	setInt := func(p *int, v int) {
		if *p == 0 {
			*p = v
		}
	}
	setDur := func(p *time.Duration, v time.Duration) {
		if *p == 0 {
			*p = v
		}
	}
	setInt(&o.LeaseBatch, DefaultLeaseBatch)
	setInt(&o.Workers, DefaultWorkers)
	setInt(&o.ProviderConcurrency, DefaultProviderConcurrency)
	setInt(&o.FeedbackQueue, DefaultFeedbackQueue)
	setDur(&o.SendTimeout, DefaultSendTimeout)
	setDur(&o.DefaultExpiry, DefaultExpiry)
	setDur(&o.MaxExpiry, DefaultMaxExpiry)
	setDur(&o.PauseBase, DefaultPauseBase)
	setDur(&o.PauseCap, DefaultPauseCap)
	setDur(&o.MaxIdle, DefaultMaxIdle)
	setDur(&o.FeedbackTimeout, DefaultFeedbackTimeout)
	setDur(&o.FeedbackBackoff, DefaultFeedbackBackoff)
	switch {
	case o.FeedbackRetries == 0:
		o.FeedbackRetries = DefaultFeedbackRetries
	case o.FeedbackRetries < 0:
		o.FeedbackRetries = 0
	}
	if o.IsOnline == nil {
		o.IsOnline = func(string) bool { return false }
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return o
}
