package hub

import (
	"testing"
	"time"
)

// When many connections are being written at once, a writer waits
// CoalesceDelay before its first write, so events published meanwhile go
// out as one frame; every event still arrives, in order.
func TestBusyWritersCoalesceFrames(t *testing.T) {
	t.Parallel()
	const delay = time.Second
	h := newHub(t, Options{CoalesceDelay: delay, CoalesceAbove: 1})
	var fakes []*fakeTransport
	for range 5 {
		_, f := connect(t, h, "shared")
		fakes = append(fakes, f)
	}
	start := time.Now()
	h.Publish([]string{"shared"}, ev("e1"))
	// The first writer kicked is alone (not above CoalesceAbove) and
	// writes at once; the other four wait.
	waitFor(t, "the first connection", func() bool {
		for _, f := range fakes {
			if f.Count() > 0 {
				return true
			}
		}
		return false
	})
	for _, cmd := range []string{"e2", "e3", "e4", "e5"} {
		h.Publish([]string{"shared"}, ev(cmd))
	}
	waitFor(t, "every event at every connection", func() bool {
		for _, f := range fakes {
			if f.Count() < 5 {
				return false
			}
		}
		return true
	})
	if el := time.Since(start); el < delay/2 {
		t.Fatalf("all delivered after %s: the busy writers did not wait", el)
	}
	single := 0
	for i, f := range fakes {
		if ids := f.IDs(t); len(ids) != 5 || !sortedIDs(ids) {
			t.Fatalf("connection %d got %v, want 5 events in order", i, ids)
		}
		if len(f.Frames()) == 1 {
			single++
		}
	}
	if single < 4 {
		t.Fatalf("%d connections got their 5 events in one frame, want 4 (the delayed ones)", single)
	}
}

// A connection written alone is not delayed, however long CoalesceDelay is
// (20s: longer than waitFor's deadline, short enough that a broken hub
// fails the test rather than hanging it in the clean-up).
func TestLoneWriterIsNotDelayed(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{CoalesceDelay: 20 * time.Second})
	_, f := connect(t, h, "user:1")
	h.Publish([]string{"user:1"}, ev("hello"))
	waitFor(t, "the event", func() bool { return f.Count() == 1 })
}

func sortedIDs(ids []string) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] <= ids[i-1] {
			return false
		}
	}
	return true
}
