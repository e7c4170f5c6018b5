package cluster

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
)

// TestPublishOnOneNodeReachesAnother: an event published through node A
// reaches a connection on node C with the mid A returned, and the
// connection on A too; all nodes agree on the epoch.
func TestPublishOnOneNodeReachesAnother(t *testing.T) {
	t.Parallel()
	s := natsServer(t, t.TempDir())
	a := startNode(t, s, Options{}, hub.Options{})
	c := startNode(t, s, Options{}, hub.Options{})
	if a.hub.Epoch() != c.hub.Epoch() {
		t.Fatalf("epochs %s and %s", a.hub.Epoch(), c.hub.Epoch())
	}
	onC, _ := c.subscribe(t, "", "user:1")
	onA, _ := a.subscribe(t, "", "user:1")
	mid, err := a.bus.Publish(bg, []string{"user:1", "user:2"}, event("hello"))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*sink{"C": onC, "A": onA} {
		got := s.events(t, 1)
		if got[0].ID != mid || got[0].Command != "hello" || string(got[0].Params) != `{"n":"hello"}` {
			t.Fatalf("on %s: %+v, want mid %s", name, got[0], mid)
		}
	}
}

// TestResumeOnAnotherNode: a client that saw events on A reconnects to B
// with its last mid and gets exactly the events it missed, in order, then
// live ones.
func TestResumeOnAnotherNode(t *testing.T) {
	t.Parallel()
	s := natsServer(t, t.TempDir())
	a := startNode(t, s, Options{}, hub.Options{CatchUp: 5 * time.Second})
	b := startNode(t, s, Options{}, hub.Options{CatchUp: 5 * time.Second})
	onA, _ := a.subscribe(t, "", "user:1")
	var mids []string
	for i := range 6 {
		// Publish through both nodes: one order whoever takes the call.
		n := []*node{a, b}[i%2]
		mid, err := n.bus.Publish(bg, []string{"user:1"}, event(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		mids = append(mids, mid)
	}
	seen := onA.events(t, 6)
	for i, w := range seen {
		if w.ID != mids[i] {
			t.Fatalf("on A event %d has mid %s, want %s (order)", i, w.ID, mids[i])
		}
	}
	// The client saw 0..2 on A, then moves to B.
	// B may not have applied all six yet: what it has is replayed, the
	// rest arrives live; the order check below covers both.
	onB, res := b.subscribe(t, seen[2].ID, "user:1")
	if !res.Resumed || res.Replayed > 3 {
		t.Fatalf("resume on B: %+v", res)
	}
	mid, err := a.bus.Publish(bg, []string{"user:1"}, event("live"))
	if err != nil {
		t.Fatal(err)
	}
	got := onB.events(t, 4)
	want := append(append([]string{}, mids[3:]...), mid)
	for i := range want {
		if got[i].ID != want[i] {
			t.Fatalf("on B: %+v, want mids %v (no gap, no duplicate)", got, want)
		}
	}
}

// TestLateNodeReplaysHistory: a node started after events were published
// replays them before Start returns, so it serves a resume at once; a
// restarted stream (new epoch) makes clients resync.
func TestLateNodeReplaysHistory(t *testing.T) {
	t.Parallel()
	s := natsServer(t, t.TempDir())
	a := startNode(t, s, Options{}, hub.Options{})
	var last string
	for i := range 5 {
		mid, err := a.bus.Publish(bg, []string{"user:9"}, event(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		last = mid
		if i == 1 {
			defer func(since string) {
				late := startNode(t, s, Options{}, hub.Options{})
				pr, err := late.hub.Since([]string{"user:9"}, since)
				if err != nil || !pr.Resumed || len(pr.Events) != 3 || pr.Events[2].ID != last {
					t.Errorf("late node: %+v %v", pr, err)
				}
				if st := late.bus.Stats(); st.Applied != 5 || st.Corrupt != 0 {
					t.Errorf("late node stats %+v", st)
				}
			}(mid)
		}
	}
}

// TestCorruptEntrySkipped: an entry that does not decode is counted and
// skipped; the next one is applied.
func TestCorruptEntrySkipped(t *testing.T) {
	t.Parallel()
	s := natsServer(t, t.TempDir())
	a := startNode(t, s, Options{}, hub.Options{})
	_, js := jsOn(t, s)
	if _, err := js.Publish(bg, "pushpull.events", []byte{9, 9, 9}); err != nil {
		t.Fatal(err)
	}
	mid, err := a.bus.Publish(bg, []string{"user:1"}, event("ok"))
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the good entry", func() bool { return a.hub.LastSeq() == 2 })
	if st := a.bus.Stats(); st.Corrupt != 1 || st.Applied != 1 {
		t.Fatalf("stats %+v", st)
	}
	// Skipping is not a gap: a client from before the bad entry resumes.
	if pr, _ := a.hub.Since([]string{"user:1"}, a.hub.MID(0)); !pr.Resumed || len(pr.Events) != 1 || pr.Events[0].ID != mid {
		t.Fatalf("history %+v", pr.Events)
	}
}

func TestPublishAfterCloseFails(t *testing.T) {
	t.Parallel()
	s := natsServer(t, t.TempDir())
	a := startNode(t, s, Options{}, hub.Options{})
	if err := a.bus.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.bus.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := a.bus.Publish(bg, []string{"user:1"}, event("x")); err == nil {
		t.Fatal("Publish after Close succeeded")
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{Replicas: 7}, {MaxAge: -1}, {MaxBytes: -1}, {ReplayTimeout: -1}} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
}
