package client

import (
	"sync"
	"time"

	"github.com/labstack/echo/v4"
	"golang.org/x/time/rate"

	"github.com/pushpull/pushpull/web/apierr"
)

// RateLimit is a per-key token bucket: Rate requests per second with bursts
// of Burst.
type RateLimit struct {
	Rate  float64
	Burst int
}

// Limiter keeps one token bucket per key (a user id or an IP address).
// Buckets idle for longer than it takes them to refill are dropped, so
// memory stays bounded by the number of active keys.
type Limiter struct {
	l   RateLimit
	now func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

// NewLimiter returns a limiter for l; now is the clock (nil: time.Now).
func NewLimiter(l RateLimit, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{l: l, now: now, buckets: map[string]*bucket{}, swept: now()}
}

// Allow takes one token for key. When none is left it reports how long to
// wait for the next one.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep(now)
	b := l.buckets[key]
	if b == nil {
		b = &bucket{lim: rate.NewLimiter(rate.Limit(l.l.Rate), l.l.Burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.lim.ReserveN(now, 1)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}

// sweep drops buckets that have been idle long enough to be full again.
func (l *Limiter) sweep(now time.Time) {
	full := time.Duration(float64(l.l.Burst)/l.l.Rate*float64(time.Second)) + time.Second
	if now.Sub(l.swept) < full {
		return
	}
	l.swept = now
	for k, b := range l.buckets {
		if now.Sub(b.seen) > full {
			delete(l.buckets, k)
		}
	}
}

// Len is the number of buckets held.
func (l *Limiter) Len() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.buckets)
}

// LimitBy is middleware answering 429 rate_limited, with Retry-After, when
// key(c)'s bucket is empty. A nil limiter allows everything.
func LimitBy(l *Limiter, key func(echo.Context) string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if l == nil {
				return next(c)
			}
			if ok, wait := l.Allow(key(c)); !ok {
				return &apierr.Error{Code: apierr.CodeRateLimited, Message: "too many requests", RetryAfter: wait}
			}
			return next(c)
		}
	}
}

// ByIP keys a limiter by the caller's address.
func ByIP(c echo.Context) string { return "ip:" + c.RealIP() }

// ByUser keys a limiter by the token's user (after RequireToken).
func ByUser(c echo.Context) string {
	if cl, ok := Claims(c); ok {
		return "user:" + cl.User
	}
	return ByIP(c)
}
