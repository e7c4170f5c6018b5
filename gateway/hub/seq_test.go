package hub

import (
	"errors"
	"testing"
	"time"
)

// TestPublishSeqSharedLog: two hubs with one epoch applying the same log
// give every event the same mid, so a client resumes on the other hub with
// no gap and no duplicate; a redelivered entry is refused; a hub that
// joined the log late (floor) makes an older since resync.
func TestPublishSeqSharedLog(t *testing.T) {
	t.Parallel()
	const epoch = 1_700_000_000
	a := newHub(t, Options{Epoch: epoch})
	b := newHub(t, Options{Epoch: epoch})
	created := time.Now()
	for seq := uint64(1); seq <= 5; seq++ {
		for _, h := range []*Hub{a, b} {
			if _, err := h.PublishSeq([]string{"user:1"}, ev("e"), seq, created); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := a.PublishSeq([]string{"user:1"}, ev("again"), 5, created); !errors.Is(err, ErrStale) {
		t.Fatalf("redelivered entry: %v", err)
	}
	// A client saw up to mid 3 on a and moves to b.
	since := a.MID(3)
	c := b.NewConn(newFake(), Native, ConnInfo{})
	res, err := b.Subscribe(c, []string{"user:1"}, since)
	if err != nil || !res.Resumed || res.Replayed != 2 {
		t.Fatalf("resume on the other hub: %+v %v", res, err)
	}
	pr, _ := b.Since([]string{"user:1"}, since)
	if len(pr.Events) != 2 || pr.Events[0].ID != b.MID(4) || pr.Events[1].ID != a.MID(5) {
		t.Fatalf("replay %+v", pr.Events)
	}

	// A hub that starts applying at seq 10 never saw 1..9.
	late := newHub(t, Options{Epoch: epoch})
	if _, err := late.PublishSeq([]string{"user:1"}, ev("e"), 10, created); err != nil {
		t.Fatal(err)
	}
	if pr, _ := late.Since([]string{"user:1"}, a.MID(5)); pr.Resumed {
		t.Fatalf("resumed from before the hub's floor: %+v", pr)
	}
	if pr, _ := late.Since([]string{"user:1"}, a.MID(9)); !pr.Resumed || len(pr.Events) != 1 {
		t.Fatalf("since = floor: %+v", pr)
	}
}

// TestPublishSeqExpiryFromCreation: an entry applied after its expiry (a
// node replaying the log at start) is delivered to nobody's history.
func TestPublishSeqExpiryFromCreation(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHub(t, Options{Now: clk.Now, Epoch: 1_700_000_000})
	old := ev("old")
	old.Expiry = time.Minute
	if _, err := h.PublishSeq([]string{"c"}, old, 1, clk.Now().Add(-2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	fresh := ev("fresh")
	fresh.Expiry = time.Minute
	if _, err := h.PublishSeq([]string{"c"}, fresh, 2, clk.Now().Add(-30*time.Second)); err != nil {
		t.Fatal(err)
	}
	pr, _ := h.Since([]string{"c"}, h.MID(0))
	if len(pr.Events) != 1 || pr.Events[0].ID != h.MID(2) {
		t.Fatalf("history %+v", pr.Events)
	}
	clk.Advance(31 * time.Second)
	if pr, _ := h.Since([]string{"c"}, h.MID(0)); len(pr.Events) != 0 {
		t.Fatalf("expiry counted from apply, not creation: %+v", pr.Events)
	}
}

// TestCatchUp: a since ahead of the hub waits for the log to get there
// (CatchUp), then resumes; without CatchUp it resyncs at once.
func TestCatchUp(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{Epoch: 1_700_000_000, CatchUp: 10 * time.Second})
	if _, err := h.PublishSeq([]string{"c"}, ev("1"), 1, time.Now()); err != nil {
		t.Fatal(err)
	}
	done := make(chan PollResult, 1)
	go func() {
		pr, _ := h.Since([]string{"c"}, h.MID(2))
		done <- pr
	}()
	// Since is waiting: the client saw 2, the hub is at 1.
	select {
	case pr := <-done:
		t.Fatalf("answered before the hub caught up: %+v", pr)
	case <-time.After(50 * time.Millisecond):
	}
	for seq := uint64(2); seq <= 3; seq++ {
		if _, err := h.PublishSeq([]string{"c"}, ev("n"), seq, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	pr := <-done
	if !pr.Resumed || len(pr.Events) != 1 || pr.Events[0].ID != h.MID(3) {
		t.Fatalf("after catching up: %+v", pr)
	}

	nowait := newHub(t, Options{Epoch: 1_700_000_000})
	if pr, _ := nowait.Since([]string{"c"}, nowait.MID(2)); pr.Resumed {
		t.Fatalf("since ahead without CatchUp resumed: %+v", pr)
	}
}

// TestPublishSeqGapRaisesFloor: entries the log dropped while the hub was
// away are a gap (resume from before it resyncs); a skipped entry is not.
func TestPublishSeqGapRaisesFloor(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{Epoch: 1_700_000_000})
	for seq := uint64(1); seq <= 2; seq++ {
		if _, err := h.PublishSeq([]string{"c"}, ev("e"), seq, time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	h.SkipSeq(3)
	h.SkipSeq(2) // already passed: ignored
	if _, err := h.PublishSeq([]string{"c"}, ev("e"), 4, time.Now()); err != nil {
		t.Fatal(err)
	}
	if pr, _ := h.Since([]string{"c"}, h.MID(1)); !pr.Resumed || len(pr.Events) != 2 {
		t.Fatalf("across a skipped entry: %+v", pr)
	}
	if _, err := h.PublishSeq([]string{"c"}, ev("e"), 9, time.Now()); err != nil {
		t.Fatal(err)
	}
	if pr, _ := h.Since([]string{"c"}, h.MID(4)); pr.Resumed {
		t.Fatalf("resumed across entries 5..8 the hub never saw: %+v", pr)
	}
	if pr, _ := h.Since([]string{"c"}, h.MID(8)); !pr.Resumed || len(pr.Events) != 1 {
		t.Fatalf("from the new floor: %+v", pr)
	}
}
