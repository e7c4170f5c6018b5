package hub

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPollReturnsStoredAtOnce(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	m1, _ := h.Publish([]string{"user:1"}, ev("a"))
	res, err := h.Poll(context.Background(), []string{"user:1", "shared"}, h.Epoch()+"0000000000000000", time.Hour)
	if err != nil || !res.Resumed || len(res.Events) != 1 || res.Events[0].ID != m1 || res.LastID != m1 || res.Channels[0] != "user:1" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestPollWakesOnPublishIncludingLiveOnly(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	for _, expiry := range []time.Duration{time.Hour, 0} {
		got := make(chan PollResult, 1)
		go func() {
			res, err := h.Poll(context.Background(), []string{"user:1", "shared"}, "", time.Minute)
			if err != nil {
				t.Error(err)
			}
			got <- res
		}()
		waitFor(t, "poll held", func() bool {
			sh := h.shards[h.shardOf("shared")]
			sh.mu.Lock()
			defer sh.mu.Unlock()
			return sh.chans["shared"] != nil && len(sh.chans["shared"].waiters) == 1
		})
		e := ev("x")
		e.Expiry = expiry
		mid, reached := h.Publish([]string{"user:1", "shared"}, e)
		if reached[0] != 1 || reached[1] != 1 {
			t.Fatalf("reached %v", reached)
		}
		res := <-got
		if len(res.Events) != 1 || res.Events[0].ID != mid || res.LastID < mid || res.Resumed {
			t.Fatalf("expiry %v: %+v", expiry, res)
		}
	}
	if st := h.Stats(); st.Channels != 2 { // only stored history remains
		t.Fatalf("stats %+v", st)
	}
}

func TestPollTimesOutAndHonoursCtx(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	m, _ := h.Publish([]string{"other"}, ev("x"))
	res, err := h.Poll(context.Background(), []string{"user:1"}, m, 20*time.Millisecond)
	if err != nil || len(res.Events) != 0 || !res.Resumed || res.LastID != m {
		t.Fatalf("timeout: %+v %v", res, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		waitUntil(func() bool { return h.Stats().Channels == 2 })
		cancel()
	}()
	res, err = h.Poll(ctx, []string{"user:1"}, m, time.Hour)
	if !errors.Is(err, context.Canceled) || res.LastID != m {
		t.Fatalf("ctx: %+v %v", res, err)
	}
	if st := h.Stats(); st.Channels != 1 {
		t.Fatalf("waiter channel left behind: %+v", st)
	}
	if _, err := h.Poll(ctx, []string{"user:1"}, m, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("done ctx: %v", err)
	}
}

func TestPollResyncReturnsAtOnce(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	res, err := h.Poll(context.Background(), []string{"user:1"}, "99999999990000000000000001", time.Hour)
	if err != nil || res.Resumed || len(res.Events) != 0 || res.LastID != h.Epoch()+"0000000000000000" {
		t.Fatalf("%+v %v", res, err)
	}
}

func TestPollOverflowForcesResync(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{QueueSize: 4})
	got := make(chan PollResult, 1)
	go func() {
		res, _ := h.Poll(context.Background(), []string{"c"}, h.Epoch()+"0000000000000000", time.Minute)
		got <- res
	}()
	waitFor(t, "poll held", func() bool { return h.Stats().Channels == 1 })
	// A real burst cannot be pinned inside the window between the wake-up
	// and the poller unregistering, so hand the held waiter more events
	// than QueueSize directly.
	sh := h.shards[h.shardOf("c")]
	sh.mu.Lock() // as Publish, which holds it: the poller cannot unregister
	for w := range sh.chans["c"].waiters {
		for range 10 {
			w.add(ev("x"), &channel{name: "c"})
		}
	}
	sh.mu.Unlock()
	res := <-got
	if res.Resumed || len(res.Events) != 4 {
		t.Fatalf("%+v", res)
	}
}
