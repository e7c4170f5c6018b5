package queue

import (
	"testing"
	"time"
)

// TestIDsIncreaseAcrossSeedAndClock: ids sort in creation order even when
// the clock stands still or a seed from a later clock is given.
func TestIDsIncreaseAcrossSeedAndClock(t *testing.T) {
	t.Parallel()
	fixed := time.Unix(1_800_000_000, 0)
	g := NewIDs(func() time.Time { return fixed })
	a, b := g.Next(), g.Next()
	if !(a < b) || len(a) != 24 {
		t.Fatalf("ids %q, %q: want increasing, 24 hex digits", a, b)
	}
	later := NewIDs(func() time.Time { return fixed.Add(time.Hour) }).Next()
	g.Seed(later)
	if c := g.Next(); c <= later {
		t.Fatalf("after Seed(%q): %q does not sort after it", later, c)
	}
	g.Seed("junk") // ignored
	if Backoff(time.Second, time.Minute, 1, 0.5) != 500*time.Millisecond || Backoff(time.Second, time.Minute, 40, 0.5) != 30*time.Second {
		t.Fatal("Backoff window")
	}
}
