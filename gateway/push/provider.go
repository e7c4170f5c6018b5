package push

import (
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/pushpull/pushpull/providers"
)

// provider wraps one providers.Provider with what the dispatcher keeps per
// platform: the in-flight bound shared by all workers, the circuit
// breaker, and counters.
type provider struct {
	p     providers.Provider
	name  string
	limit int
	sem   *semaphore.Weighted

	base, cap time.Duration

	mu          sync.Mutex
	strikes     int // bad batches in a row
	pausedUntil time.Time
	pauseReason string

	delivered, retried, invalid, rejected, pausedJobs atomic.Uint64

	latency *histogram // of Send calls
	health  health
}

func newProvider(p providers.Provider, o Options) *provider {
	return &provider{
		p: p, name: p.Platform(), limit: o.ProviderConcurrency,
		sem:  semaphore.NewWeighted(int64(o.ProviderConcurrency)),
		base: o.PauseBase, cap: o.PauseCap,
		latency: newHistogram(latencyBounds()),
	}
}

// paused reports how long the provider stays paused, and why.
func (p *provider) paused(now time.Time) (time.Duration, string, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.Before(p.pausedUntil) {
		return p.pausedUntil.Sub(now), p.pauseReason, true
	}
	return 0, "", false
}

// observe feeds one batch's results to the circuit breaker. A batch
// answered "retry" for more than half of its messages (throttling, an
// outage, a network failure) is a strike: the provider pauses for the
// batch's longest Retry-After when it has one (at most PauseCap), otherwise for
// PauseBase*2^(strikes-1) capped at PauseCap.
// A healthy batch clears the strikes; a failing one answered while the
// provider is already paused adds none (it only stretches the pause to
// its Retry-After). It reports the pause it started, if any.
func (p *provider) observe(now time.Time, results []providers.Result) (time.Duration, string) {
	retries := 0
	var after time.Duration
	reason := ""
	for i := range results {
		if results[i].Class == providers.Retry || results[i].Class == 0 {
			retries++
			after = max(after, results[i].RetryAfter)
			if reason == "" {
				reason = results[i].Reason
			}
		}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if retries*2 <= len(results) {
		p.strikes = 0
		return 0, ""
	}
	if now.Before(p.pausedUntil) {
		// A chunk sent before the pause began answered during it: the
		// same outage, not a new strike (chunks run in parallel, and
		// counting each would escalate the pause n-fold at once).
		if until := now.Add(min(after, p.cap)); until.After(p.pausedUntil) {
			p.pausedUntil = until
		}
		return 0, ""
	}
	p.strikes++
	backoff := p.cap
	if shift := p.strikes - 1; shift < 30 && p.base<<shift > 0 && p.base<<shift < p.cap {
		backoff = p.base << shift
	}
	// The provider's own Retry-After is the pause when it gives one
	// (throttling: it knows when it will take traffic again); the
	// growing backoff is for outages that come without one.
	pause := backoff
	if after > 0 {
		pause = min(after, p.cap)
	}
	if until := now.Add(pause); until.After(p.pausedUntil) {
		p.pausedUntil = until
		p.pauseReason = reason
	}
	return pause, reason
}

// ProviderStats are a provider's counters since the service was built.
type ProviderStats struct {
	Platform string `json:"platform"`
	// Delivered, Retried, TokenInvalid and Rejected count the provider's
	// answers per class.
	Delivered    uint64 `json:"delivered"`
	Retried      uint64 `json:"retried"`
	TokenInvalid uint64 `json:"token_invalid"`
	Rejected     uint64 `json:"rejected"`
	// Paused counts jobs put back unsent because the provider was paused.
	Paused uint64 `json:"paused"`
	// PausedUntil is set while the circuit breaker holds the provider.
	PausedUntil *time.Time `json:"paused_until,omitempty"`

	// Results break the counters down per app, result and reason (sorted),
	// with ResultPaused for jobs put back unsent and rejected/no_app,
	// rejected/undecodable for jobs dead-lettered before sending.
	Results []ResultCount `json:"results"`
	// Latency is the histogram of the provider's Send calls.
	Latency Histogram `json:"send_latency"`
	// LastSuccess is when the provider last answered a push (delivered,
	// or token invalid); LastFailure when it last answered retry or
	// rejected (or a send failed), with LastError saying what (tokens
	// redacted). Unset until it happens.
	LastSuccess *time.Time `json:"last_success,omitempty"`
	LastFailure *time.Time `json:"last_failure,omitempty"`
	LastError   string     `json:"last_error,omitempty"`
}

// ProviderStats returns the counters of each configured provider.
func (s *Service) ProviderStats() []ProviderStats {
	now := s.opts.Now()
	out := make([]ProviderStats, 0, len(s.provs))
	for _, name := range []string{providers.PlatformAPNs, providers.PlatformFCM} {
		if p := s.provs[name]; p != nil {
			out = append(out, p.stats(now))
		}
	}
	for name, p := range s.provs {
		if name != providers.PlatformAPNs && name != providers.PlatformFCM {
			out = append(out, p.stats(now))
		}
	}
	return out
}

func (p *provider) stats(now time.Time) ProviderStats {
	st := ProviderStats{
		Platform: p.name, Delivered: p.delivered.Load(), Retried: p.retried.Load(),
		TokenInvalid: p.invalid.Load(), Rejected: p.rejected.Load(), Paused: p.pausedJobs.Load(),
	}
	p.mu.Lock()
	if now.Before(p.pausedUntil) {
		t := p.pausedUntil.UTC()
		st.PausedUntil = &t
	}
	p.mu.Unlock()
	p.healthStats(&st)
	return st
}
