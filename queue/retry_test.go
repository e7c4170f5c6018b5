package queue

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestRetryBackoffGrowsToCap(t *testing.T) {
	t.Parallel()
	const frac = 0.5
	h := newHarness(t, Options{BackoffBase: time.Second, BackoffCap: 40 * time.Second, MaxAttempts: 100, Random: func() float64 { return frac }})
	ctx := context.Background()
	h.enqueue(job("1"))
	// Full jitter: delay = frac * min(cap, base * 2^(attempt-1)).
	want := []time.Duration{500 * time.Millisecond, time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 16 * time.Second, 20 * time.Second, 20 * time.Second}
	for i, w := range want {
		jobs := h.lease(1)
		if len(jobs) != 1 {
			t.Fatalf("attempt %d: job not due", i+1)
		}
		j := jobs[0]
		now := h.clock.Now()
		if err := h.q.Retry(ctx, j, 0, "unavailable"); err != nil {
			t.Fatal(err)
		}
		if j.Attempts != i+1 || j.LastError != "unavailable" {
			t.Fatalf("attempt %d: job not updated: %+v", i+1, j)
		}
		if got := j.NextAttempt.Sub(now); got != w {
			t.Fatalf("attempt %d: delay %v, want %v", i+1, got, w)
		}
		if len(h.lease(1)) != 0 {
			t.Fatalf("attempt %d: leased before its next attempt", i+1)
		}
		h.clock.Advance(w)
	}
	if s := h.stats(); s.Retried != uint64(len(want)) {
		t.Fatalf("Retried = %d", s.Retried)
	}
}

func TestRetryJitterBounds(t *testing.T) {
	t.Parallel()
	const window = 4 * time.Second // first retry: [0, base)
	h := newHarness(t, Options{BackoffBase: window, BackoffCap: time.Hour})
	ctx := context.Background()
	h.enqueue(job("1"))
	// Over many samples the delays must stay inside the window and spread
	// over it (full jitter, not a fixed or equal-jitter delay).
	var lo, hi time.Duration = time.Hour, -1
	for i := range 100 {
		j := h.lease(1)[0]
		if err := h.q.Retry(ctx, j, 0, "x"); err != nil {
			t.Fatal(err)
		}
		d := j.NextAttempt.Sub(h.clock.Now())
		if d < 0 || d >= window {
			t.Fatalf("sample %d: delay %v outside [0,%v)", i, d, window)
		}
		lo, hi = min(lo, d), max(hi, d)
		// Back to attempt 0 through the dead letters, to sample again.
		if err := h.q.Dead(ctx, j, "reset"); err != nil {
			t.Fatal(err)
		}
		if n, err := h.q.RetryDead(ctx, []string{j.ID}, false); err != nil || n != 1 {
			t.Fatal(n, err)
		}
	}
	if lo > window/4 || hi < window*3/4 {
		t.Fatalf("jitter spread %v..%v too narrow for full jitter over [0,%v)", lo, hi, window)
	}
}

func TestRetryAfterHonoured(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Random: func() float64 { return 0.99 }})
	ctx := context.Background()
	h.enqueue(job("1"))
	j := h.lease(1)[0]
	now := h.clock.Now()
	if err := h.q.Retry(ctx, j, 2*time.Minute, "429"); err != nil {
		t.Fatal(err)
	}
	if got := j.NextAttempt.Sub(now); got != 2*time.Minute {
		t.Fatalf("Retry-After 2m gave delay %v", got)
	}
	h.clock.Advance(2 * time.Minute)
	j = h.lease(1)[0]
	now = h.clock.Now()
	// A Retry-After shorter than the backoff does not shorten it.
	if err := h.q.Retry(ctx, j, time.Millisecond, "429"); err != nil {
		t.Fatal(err)
	}
	if got, want := j.NextAttempt.Sub(now), time.Duration(0.99*float64(2*time.Second)); got != want {
		t.Fatalf("delay %v, want backoff %v", got, want)
	}
}

func TestMaxAttemptsDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxAttempts: 3, Random: func() float64 { return 0 }})
	ctx := context.Background()
	j := job("1")
	j.NotificationID = "n"
	h.enqueue(j)
	for i := range 3 {
		jobs := h.lease(1)
		if len(jobs) != 1 {
			t.Fatalf("attempt %d: not due", i+1)
		}
		if err := h.q.Retry(ctx, jobs[0], 0, "boom"); err != nil {
			t.Fatal(err)
		}
	}
	if len(h.lease(1)) != 0 {
		t.Fatal("job leased after MaxAttempts")
	}
	dead, _, err := h.q.ListDead(ctx, "", 10)
	if err != nil || len(dead) != 1 || dead[0].Reason != ReasonMaxAttempts || dead[0].Attempts != 3 || dead[0].LastError != "boom" {
		t.Fatalf("dead letters %+v, %v", dead, err)
	}
	st, _ := h.q.Status(ctx, "n")
	if st[0].State != StateDead || st[0].LastError != ReasonMaxAttempts {
		t.Fatalf("status %+v", st)
	}
	if err := h.q.Retry(ctx, j, 0, "again"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Retry of a dead job: %v", err)
	}
}

func TestExpiredJobNeverLeased(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	now := h.clock.Now()
	j := job("1")
	j.NotificationID = "n"
	j.NotBefore = now.Add(time.Minute)
	j.ExpiresAt = now.Add(2 * time.Minute)
	live := job("2")
	h.enqueue(j, live)
	h.clock.Advance(2 * time.Minute)
	got := h.lease(10)
	if len(got) != 1 || got[0].ID != live.ID {
		t.Fatalf("leased %v, want only the live job", ids(got))
	}
	dead, _, _ := h.q.ListDead(ctx, "", 10)
	if len(dead) != 1 || dead[0].ID != j.ID || dead[0].Reason != ReasonExpired {
		t.Fatalf("dead %+v", dead)
	}
	s := h.stats()
	if s.Expired != 1 || s.DeadTotal != 1 || s.Dead != 1 || s.Due != 0 || s.InFlight != 1 {
		t.Fatalf("stats %+v", s)
	}
	st, _ := h.q.Status(ctx, "n")
	if st[0].State != StateExpired {
		t.Fatalf("status %+v", st)
	}
}

func TestRetryPastExpiryDeadLetters(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	j := job("1")
	j.ExpiresAt = h.clock.Now().Add(30 * time.Second)
	h.enqueue(j)
	l := h.lease(1)[0]
	if err := h.q.Retry(ctx, l, time.Minute, "503"); err != nil {
		t.Fatal(err)
	}
	dead, _, _ := h.q.ListDead(ctx, "", 10)
	if len(dead) != 1 || dead[0].Reason != ReasonExpired {
		t.Fatalf("dead %+v", dead)
	}
	if s := h.stats(); s.Expired != 1 || s.Retried != 0 {
		t.Fatalf("stats %+v", s)
	}
}

func TestDropRemovesWithoutDeadLetter(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	j := job("1")
	j.NotificationID = "n"
	h.enqueue(j)
	l := h.lease(1)[0]
	if err := h.q.Drop(ctx, l, "Unregistered"); err != nil {
		t.Fatal(err)
	}
	if s := h.stats(); s.Dead != 0 || s.Due != 0 || s.InFlight != 0 {
		t.Fatalf("stats %+v", s)
	}
	st, _ := h.q.Status(ctx, "n")
	if st[0].State != StateDropped || st[0].LastError != "Unregistered" {
		t.Fatalf("status %+v", st)
	}
	if err := h.q.Drop(ctx, l, "again"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Drop: %v", err)
	}
}

// Retry and Dead rewrite the job: a small (inline) payload must survive
// them, and so must a dead letter brought back by RetryDead.
func TestPayloadSurvivesRetryAndDead(t *testing.T) {
	h := newHarness(t, Options{})
	ctx := context.Background()
	payload := []byte(`{"body":"x"}`)
	h.enqueue(&Job{Platform: "fcm", Token: "t", Payload: payload})
	js := h.lease(1)
	if len(js) != 1 {
		t.Fatalf("lease: %d", len(js))
	}
	if err := h.q.Retry(ctx, js[0], time.Second, "try again"); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(time.Hour)
	got := h.lease(1)
	if len(got) != 1 || string(got[0].Payload) != string(payload) {
		t.Fatalf("payload after Retry = %v", got)
	}
	if err := h.q.Dead(ctx, got[0], "bad"); err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.RetryDead(ctx, nil, true); err != nil {
		t.Fatal(err)
	}
	got = h.lease(1)
	if len(got) != 1 || string(got[0].Payload) != string(payload) {
		t.Fatalf("payload after Dead+RetryDead = %v", got)
	}
}

func TestPostponeKeepsAttempts(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{MaxAttempts: 2, Random: func() float64 { return 0.99 }})
	ctx := context.Background()
	j := job("1")
	j.NotificationID = "n"
	j.ExpiresAt = h.clock.Now().Add(time.Hour)
	h.enqueue(j)
	// Ten postponements (a provider paused ten times) leave the job's
	// attempt budget whole, where two Retries would have killed it.
	for i := range 10 {
		l := h.lease(1)
		if len(l) != 1 {
			t.Fatalf("round %d: job not due", i)
		}
		now := h.clock.Now()
		if err := h.q.Postpone(ctx, l[0], 3*time.Second, "apns paused"); err != nil {
			t.Fatal(err)
		}
		if l[0].Attempts != 0 || l[0].LastError != "apns paused" {
			t.Fatalf("round %d: postponed job %+v", i, l[0])
		}
		// Exactly the pause, no backoff added.
		if got := l[0].NextAttempt.Sub(now); got != 3*time.Second {
			t.Fatalf("round %d: due after %v, want 3s", i, got)
		}
		if len(h.lease(1)) != 0 {
			t.Fatalf("round %d: leased before the pause ended", i)
		}
		h.clock.Advance(3 * time.Second)
	}
	if s := h.stats(); s.Retried != 0 || s.Dead != 0 {
		t.Fatalf("stats %+v", s)
	}
	st, _ := h.q.Status(ctx, "n")
	if st[0].State != StateRetrying || st[0].Attempts != 0 || st[0].LastError != "apns paused" {
		t.Fatalf("status %+v", st)
	}
	// Past its expiry a postponed job dies "expired".
	l := h.lease(1)[0]
	if err := h.q.Postpone(ctx, l, 2*time.Hour, "apns paused"); err != nil {
		t.Fatal(err)
	}
	dead, _, _ := h.q.ListDead(ctx, "", 10)
	if len(dead) != 1 || dead[0].Reason != ReasonExpired {
		t.Fatalf("dead %+v", dead)
	}
	if err := h.q.Postpone(ctx, l, 0, "x"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Postpone of a dead job: %v", err)
	}
}
