package push

import (
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// TestBreakerOneStrikePerOutage: chunks sent in parallel before the pause
// began all fail; only the first adds a strike, so the pause grows one
// step per probe round, not one step per chunk.
func TestBreakerOneStrikePerOutage(t *testing.T) {
	p := &provider{name: "fcm", base: time.Second, cap: time.Minute}
	now := time.Unix(1_700_000_000, 0)
	fail := []providers.Result{{Class: providers.Retry, Reason: "QUOTA_EXCEEDED", RetryAfter: 2 * time.Second}}
	if pause, _ := p.observe(now, fail); pause != 2*time.Second {
		t.Fatalf("first strike paused %v, want the 2s Retry-After", pause)
	}
	for range 8 { // eight more chunks of the same round answer
		if pause, _ := p.observe(now.Add(10*time.Millisecond), fail); pause != 0 {
			t.Fatalf("a chunk answered during the pause started a new pause of %v", pause)
		}
	}
	if p.strikes != 1 {
		t.Fatalf("strikes = %d after one round, want 1", p.strikes)
	}
	// A longer Retry-After answered during the pause stretches it.
	long := []providers.Result{{Class: providers.Retry, RetryAfter: 5 * time.Second}}
	p.observe(now.Add(time.Second), long)
	if left, _, ok := p.paused(now.Add(5 * time.Second)); !ok || left != time.Second {
		t.Fatalf("paused %v %v at +5s, want 1s left (Retry-After 5s from +1s)", left, ok)
	}
	// The next round (after the pause) is the second strike: 2s backoff
	// without a Retry-After; a Retry-After, when given, is the pause
	// (capped at PauseCap) whatever the strike count.
	if pause, _ := p.observe(now.Add(7*time.Second), []providers.Result{{Class: providers.Retry}}); pause != 2*time.Second {
		t.Fatalf("second strike paused %v, want 2s", pause)
	}
	if pause, _ := p.observe(now.Add(10*time.Second), fail); pause != 2*time.Second {
		t.Fatalf("third strike with Retry-After 2s paused %v", pause)
	}
	if pause, _ := p.observe(now.Add(13*time.Second), []providers.Result{{Class: providers.Retry}}); pause != 8*time.Second {
		t.Fatalf("fourth strike paused %v, want 8s", pause)
	}
	hour := []providers.Result{{Class: providers.Retry, RetryAfter: time.Hour}}
	if pause, _ := p.observe(now.Add(30*time.Second), hour); pause != time.Minute {
		t.Fatalf("Retry-After 1h paused %v, want PauseCap 1m", pause)
	}
	// A healthy answer clears the strikes.
	p.observe(now.Add(2*time.Minute), []providers.Result{{Class: providers.Delivered}})
	if p.strikes != 0 {
		t.Fatalf("strikes = %d after a healthy batch", p.strikes)
	}
}
