package client

import (
	"testing"
	"time"
)

// The wheel's goroutine exists only while connections are registered: the
// first add starts it and the last remove stops it and waits for it.
func TestPingWheelGoroutineFollowsConnections(t *testing.T) {
	t.Parallel()
	w := newPingWheel(time.Hour) // no tick during the test: conns stay nil
	a := w.add(nil)
	done := w.done
	if done == nil {
		t.Fatal("no loop after the first add")
	}
	b := w.add(nil)
	if w.done != done {
		t.Fatal("a second loop was started")
	}
	w.remove(a)
	select {
	case <-done:
		t.Fatal("loop stopped while a connection remains")
	default:
	}
	w.remove(b)
	select {
	case <-done: // remove waited for it
	default:
		t.Fatal("loop still running after the last remove returned")
	}
	if w.n != 0 || w.stop != nil {
		t.Fatalf("wheel not reset: n=%d", w.n)
	}
	for i, s := range w.slots {
		if len(s) != 0 {
			t.Fatalf("slot %d keeps %d peers", i, len(s))
		}
	}
}

// A new connection is placed so that its first ping comes about one
// interval later: in the slot the loop visits last.
func TestPingWheelFirstPingAfterAnInterval(t *testing.T) {
	t.Parallel()
	w := newPingWheel(time.Hour)
	w.cur = 5
	p := w.add(nil)
	defer w.remove(p)
	if p.slot != 4 {
		t.Fatalf("slot %d, want 4 (visited last in the round starting at 5)", p.slot)
	}
}
