package jsqueue

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/queue"
)

func TestSubmitLeaseAck(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	ctx := context.Background()
	a, b := job("u1"), job("u2")
	submit(t, q, a, b)
	if a.ID == "" || a.CreatedAt.IsZero() || a.NextAttempt.IsZero() {
		t.Fatalf("submit did not fill the job: %+v", a)
	}
	got := mustLease(t, q, 10)
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID || string(got[0].Payload) != `{"a":1}` {
		t.Fatalf("leased %v, want [%s %s]", ids(got), a.ID, b.ID)
	}
	if again := mustLease(t, q, 10); len(again) != 0 {
		t.Fatalf("leased jobs handed out again: %v", ids(again))
	}
	st, err := q.Status(ctx, a.NotificationID)
	if err != nil || len(st) != 1 || st[0].State != queue.StateSending {
		t.Fatalf("status while leased = %+v, %v", st, err)
	}
	if err := q.Ack(ctx, a.ID, b.ID, "unknown"); err != nil {
		t.Fatal(err)
	}
	st, err = q.Status(ctx, a.NotificationID)
	if err != nil || len(st) != 1 || st[0].State != queue.StateDelivered {
		t.Fatalf("status after ack = %+v, %v", st, err)
	}
	info, err := q.jobs.Info(ctx)
	if err != nil || info.State.Msgs != 0 {
		t.Fatalf("jobs stream after ack holds %d messages (%v)", info.State.Msgs, err)
	}
	s, err := q.Stats()
	if err != nil || s.Delivered != 2 || s.InFlight != 0 || s.Due != 0 {
		t.Fatalf("stats = %+v, %v", s, err)
	}
	if _, err := q.Status(ctx, "nope"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("status of unknown notification: %v", err)
	}
}

// Two nodes (two connections, two Queues on the same streams) leasing at
// the same time never get the same job, and together get all of them.
func TestConcurrentLeasersExclusive(t *testing.T) {
	t.Parallel()
	s, js, q1 := newEnv(t, Options{})
	q2 := openQueue(t, connect(t, s), Options{})
	_ = js
	const n = 300
	jobs := make([]*queue.Job, n)
	for i := range jobs {
		jobs[i] = job("u")
	}
	submit(t, q1, jobs...)
	var mu sync.Mutex
	seen := map[string]int{}
	var wg sync.WaitGroup
	for _, q := range []*Queue{q1, q2, q1, q2} {
		wg.Go(func() {
			for {
				got, err := q.Lease(context.Background(), 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, j := range got {
					seen[j.ID]++
				}
				mu.Unlock()
				if err := q.Ack(context.Background(), ids(got)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(seen) != n {
		t.Fatalf("leased %d distinct jobs, want %d", len(seen), n)
	}
	for id, c := range seen {
		if c != 1 {
			t.Fatalf("job %s leased %d times", id, c)
		}
	}
}

func TestLeaseTimeoutRedelivers(t *testing.T) {
	t.Parallel()
	const lt = 300 * time.Millisecond
	s, _, q1 := newEnv(t, Options{LeaseTimeout: lt})
	q2 := openQueue(t, connect(t, s), Options{LeaseTimeout: lt})
	a := job("u1")
	submit(t, q1, a)
	start := time.Now()
	if got := mustLease(t, q1, 1); len(got) != 1 {
		t.Fatal("first lease got nothing")
	}
	if got := mustLease(t, q2, 1); len(got) != 0 {
		t.Fatal("job leased twice while its lease was valid")
	}
	got := leaseWithin(t, q2, 10*time.Second)
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatalf("job not redelivered after the lease timeout: %v", ids(got))
	}
	if el := time.Since(start); el < lt {
		t.Fatalf("redelivered after %v, before the lease timeout %v", el, lt)
	}
}

func TestRetryHonoursDelayAndCountsAttempts(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{BackoffBase: time.Millisecond, BackoffCap: time.Millisecond, Random: func() float64 { return 0 }})
	ctx := context.Background()
	a := job("u1")
	submit(t, q, a)
	j := mustLease(t, q, 1)[0]
	const after = 700 * time.Millisecond
	start := time.Now()
	if err := q.Retry(ctx, j, after, "503 unavailable"); err != nil {
		t.Fatal(err)
	}
	if j.Attempts != 1 || j.LastError != "503 unavailable" || j.NextAttempt.Before(start.Add(after-time.Millisecond)) {
		t.Fatalf("retried job = %+v", j)
	}
	if at, ok := q.NextDue(); !ok || at.After(j.NextAttempt) {
		t.Fatalf("NextDue = %v %v, want <= %v", at, ok, j.NextAttempt)
	}
	if got := mustLease(t, q, 1); len(got) != 0 {
		t.Fatal("retried job leased before its delay")
	}
	st, _ := q.Status(ctx, a.NotificationID)
	if len(st) != 1 || st[0].State != queue.StateRetrying || st[0].Attempts != 1 {
		t.Fatalf("status = %+v", st)
	}
	got := leaseWithin(t, q, 10*time.Second)
	if len(got) != 1 {
		t.Fatal("retried job never came back")
	}
	if el := time.Since(start); el < after {
		t.Fatalf("retried job came back after %v, want >= %v", el, after)
	}
	if got[0].Attempts != 1 || got[0].LastError != "503 unavailable" {
		t.Fatalf("redelivered job lost its retry state: %+v", got[0])
	}
	if err := q.Retry(ctx, &queue.Job{ID: "nope"}, 0, "x"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("retry of a job not leased: %v", err)
	}
}

func TestPostponeKeepsAttempts(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{MaxAttempts: 1})
	ctx := context.Background()
	a := job("u1")
	submit(t, q, a)
	j := mustLease(t, q, 1)[0]
	const after = 500 * time.Millisecond
	start := time.Now()
	// With MaxAttempts 1 a Retry would kill the job; Postpone must not.
	if err := q.Postpone(ctx, j, after, "fcm paused"); err != nil {
		t.Fatal(err)
	}
	if j.Attempts != 0 || j.LastError != "fcm paused" {
		t.Fatalf("postponed job = %+v", j)
	}
	got := leaseWithin(t, q, 10*time.Second)
	if len(got) != 1 || got[0].ID != a.ID {
		t.Fatal("postponed job never came back")
	}
	if el := time.Since(start); el < after {
		t.Fatalf("postponed job came back after %v, want >= %v", el, after)
	}
	if got[0].Attempts != 0 {
		t.Fatalf("redelivered job counted an attempt: %+v", got[0])
	}
	if dead, _, _ := q.ListDead(ctx, "", 10); len(dead) != 0 {
		t.Fatalf("dead = %+v", dead)
	}
	if err := q.Postpone(ctx, &queue.Job{ID: "nope"}, 0, "x"); !errors.Is(err, queue.ErrNotFound) {
		t.Fatalf("postpone of a job not leased: %v", err)
	}
}

func TestRetryMaxAttemptsDies(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{MaxAttempts: 1})
	ctx := context.Background()
	submit(t, q, job("u1"))
	j := mustLease(t, q, 1)[0]
	if err := q.Retry(ctx, j, 0, "boom"); err != nil {
		t.Fatal(err)
	}
	dead, _, err := q.ListDead(ctx, "", 10)
	if err != nil || len(dead) != 1 || dead[0].Reason != queue.ReasonMaxAttempts || dead[0].Attempts != 1 {
		t.Fatalf("dead = %+v, %v", dead, err)
	}
}

func TestExpiredJobIsDeadNotLeased(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	now := time.Now()
	clockFn := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	_, _, q := newEnv(t, Options{Now: clockFn})
	ctx := context.Background()
	a := job("u1")
	a.ExpiresAt = now.Add(time.Minute)
	submit(t, q, a)
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	if got := mustLease(t, q, 10); len(got) != 0 {
		t.Fatalf("expired job leased: %v", ids(got))
	}
	dead, _, err := q.ListDead(ctx, "", 10)
	if err != nil || len(dead) != 1 || dead[0].ID != a.ID || dead[0].Reason != queue.ReasonExpired {
		t.Fatalf("dead = %+v, %v", dead, err)
	}
	st, _ := q.Status(ctx, a.NotificationID)
	if len(st) != 1 || st[0].State != queue.StateExpired {
		t.Fatalf("status = %+v", st)
	}
	s, err := q.Stats()
	if err != nil || s.Expired != 1 || s.Dead != 1 {
		t.Fatalf("stats = %+v, %v", s, err)
	}
}

func TestDeferredJobWaitsForNotBefore(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	a := job("u1")
	a.NotBefore = time.Now().Add(600 * time.Millisecond)
	submit(t, q, a)
	if got := mustLease(t, q, 1); len(got) != 0 {
		t.Fatal("deferred job leased early")
	}
	got := leaseWithin(t, q, 10*time.Second)
	if len(got) != 1 || time.Now().Before(a.NotBefore) {
		t.Fatalf("deferred job: %v at %v, not before %v", ids(got), time.Now(), a.NotBefore)
	}
}

func TestRestartKeepsJobs(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)
	q := openQueue(t, connect(t, s), Options{})
	a, b := job("u1"), job("u2")
	submit(t, q, a, b)
	_ = q.Close()
	s.Shutdown()
	s.WaitForShutdown()

	s2 := startServer(t, dir)
	t.Cleanup(s2.Shutdown)
	q2 := openQueue(t, connect(t, s2), Options{})
	got := leaseWithin(t, q2, 10*time.Second)
	if len(got) != 2 || got[0].ID != a.ID || got[1].ID != b.ID {
		t.Fatalf("after restart leased %v, want [%s %s]", ids(got), a.ID, b.ID)
	}
}

func TestWakeupOnSubmitFromOtherNode(t *testing.T) {
	t.Parallel()
	s, _, q1 := newEnv(t, Options{})
	q2 := openQueue(t, connect(t, s), Options{})
	select { // drain the signal of Open
	case <-q2.Wakeup():
	default:
	}
	submit(t, q1, job("u1"))
	select {
	case <-q2.Wakeup():
	case <-time.After(10 * time.Second):
		t.Fatal("no wakeup on the other node")
	}
}

func TestClosed(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
	if _, err := q.Lease(context.Background(), 1); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("lease after close: %v", err)
	}
	if _, _, err := q.Submit(context.Background(), queue.Submission{Jobs: []*queue.Job{job("u")}}); !errors.Is(err, queue.ErrClosed) {
		t.Fatalf("submit after close: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []Options{{LeaseTimeout: -1}, {MaxAttempts: -1}, {Replicas: 7}, {BackoffBase: time.Minute, BackoffCap: time.Second}, {LeaseTimeout: time.Millisecond}} {
		if err := o.Validate(); !errors.Is(err, queue.ErrInvalid) {
			t.Errorf("Validate(%+v) = %v", o, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestSubmitWithoutNATSIsStorageError: with the server gone, Submit fails
// with queue.ErrStorage (the API's 503 "try again"), not an unclassified
// error (500).
func TestSubmitWithoutNATSIsStorageError(t *testing.T) {
	t.Parallel()
	s, _, q := newEnv(t, Options{})
	s.Shutdown()
	s.WaitForShutdown()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, _, err := q.Submit(ctx, queue.Submission{Jobs: []*queue.Job{job("u1")}})
	if !errors.Is(err, queue.ErrStorage) {
		t.Fatalf("Submit without NATS: %v, want queue.ErrStorage", err)
	}
	_, _, err = q.Submit(ctx, queue.Submission{IdempotencyKey: "k", Jobs: []*queue.Job{job("u2")}})
	if !errors.Is(err, queue.ErrStorage) {
		t.Fatalf("Submit with a key without NATS: %v, want queue.ErrStorage", err)
	}
}
