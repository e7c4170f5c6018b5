package queue

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero options: %v", err)
	}
	cases := map[string]Options{
		"BackoffBase":       {BackoffBase: -1},
		"LeaseTimeout":      {LeaseTimeout: -time.Second},
		"MaxAttempts":       {MaxAttempts: -1},
		"MaxBatch":          {MaxBatch: -5},
		"DeadMax":           {DeadMax: -1},
		"IdempotencyWindow": {IdempotencyWindow: -1},
		"BackoffCap":        {BackoffBase: time.Minute, BackoffCap: time.Second},
	}
	for field, o := range cases {
		err := o.Validate()
		if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v, want ErrInvalid naming the field", field, err)
		}
		if _, err := Open(nil, o); !errors.Is(err, ErrInvalid) {
			t.Errorf("Open with bad %s: %v", field, err)
		}
	}
}

func TestEnqueueDurableAcrossReopen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	now := h.clock.Now()
	want := &Job{
		NotificationID: "n1", User: "42", DeviceID: "d1", Platform: "apns", AppID: "Bitrix24",
		Token: "abcdef0123456789", Sandbox: true, Tag: "IM", SubTag: "IM_17",
		Payload: []byte(`{"aps":{"alert":"hi"}}`), ExpiresAt: now.Add(time.Hour),
	}
	h.enqueue(want)
	if want.ID == "" || !want.CreatedAt.Equal(now) || !want.NextAttempt.Equal(now) {
		t.Fatalf("Enqueue did not fill ID/CreatedAt/NextAttempt: %+v", want)
	}
	h.reopen()
	got := h.lease(10)
	if len(got) != 1 {
		t.Fatalf("after reopen leased %d jobs, want 1", len(got))
	}
	g := *got[0]
	w := *want
	for _, p := range []*Job{&g, &w} { // compare instants, not locations
		p.CreatedAt, p.NextAttempt, p.ExpiresAt = p.CreatedAt.UTC(), p.NextAttempt.UTC(), p.ExpiresAt.UTC()
	}
	if !reflect.DeepEqual(g, w) {
		t.Fatalf("job changed across reopen:\n got %+v\nwant %+v", g, w)
	}
}

func TestIDsUniqueAndTimeOrdered(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	var all []string
	for range 3 {
		jobs := []*Job{job("a"), job("b"), job("c")}
		h.enqueue(jobs...)
		all = append(all, ids(jobs)...)
	}
	if !slices.IsSorted(all) {
		t.Fatalf("ids not in creation order: %v", all)
	}
	if len(slices.Compact(slices.Clone(all))) != len(all) {
		t.Fatalf("duplicate ids: %v", all)
	}
	// A clock that goes back across a restart must not reuse ids.
	h.reopen()
	h.clock.Advance(-time.Hour)
	j := job("d")
	h.enqueue(j)
	if j.ID <= all[len(all)-1] {
		t.Fatalf("id %s after clock went back is not after %s", j.ID, all[len(all)-1])
	}
}

func TestLeaseOrderedByNextAttempt(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	now := h.clock.Now()
	var jobs []*Job
	for i, off := range []int{5, 1, 4, 2, 3} {
		j := job(fmt.Sprint(i))
		j.NextAttempt = now.Add(-time.Duration(off) * time.Minute)
		jobs = append(jobs, j)
	}
	h.enqueue(jobs...)
	got := h.lease(3)
	got = append(got, h.lease(10)...)
	want := []string{jobs[0].ID, jobs[2].ID, jobs[4].ID, jobs[3].ID, jobs[1].ID}
	if !slices.Equal(ids(got), want) {
		t.Fatalf("lease order %v, want %v", ids(got), want)
	}
}

func TestDeferredJobNotLeasedEarly(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	at := h.clock.Now().Add(10 * time.Minute)
	j := job("42")
	j.NotBefore = at
	h.enqueue(j)
	if got := h.lease(10); len(got) != 0 {
		t.Fatalf("deferred job leased early: %v", ids(got))
	}
	if s := h.stats(); s.Deferred != 1 || s.Due != 0 {
		t.Fatalf("stats %+v, want 1 deferred, 0 due", s)
	}
	if next, ok := h.q.NextDue(); !ok || !next.Equal(at) {
		t.Fatalf("NextDue = %v, %v; want %v", next, ok, at)
	}
	h.clock.Advance(10*time.Minute - time.Nanosecond)
	if got := h.lease(10); len(got) != 0 {
		t.Fatal("leased 1ns before NotBefore")
	}
	h.clock.Advance(time.Nanosecond)
	if got := h.lease(10); len(got) != 1 {
		t.Fatalf("at NotBefore leased %d, want 1", len(got))
	}
	if _, ok := h.q.NextDue(); ok {
		t.Fatal("NextDue reports a leased job")
	}
}

func TestLeaseTimeoutMakesJobDueAgain(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{LeaseTimeout: 30 * time.Second})
	h.enqueue(job("1"))
	first := h.lease(10)
	if len(first) != 1 {
		t.Fatal("nothing leased")
	}
	h.clock.Advance(29 * time.Second)
	if got := h.lease(10); len(got) != 0 {
		t.Fatal("job leased twice within its lease")
	}
	if s := h.stats(); s.InFlight != 1 || s.Due != 0 {
		t.Fatalf("stats in lease: %+v", s)
	}
	h.clock.Advance(time.Second)
	again := h.lease(10)
	if len(again) != 1 || again[0].ID != first[0].ID {
		t.Fatalf("after lease timeout got %v, want %s", ids(again), first[0].ID)
	}
}

func TestLeaseTimeoutSignalsWakeup(t *testing.T) {
	t.Parallel()
	// Real clock: the background loop's timer is what ends the lease.
	h := newHarness(t, Options{Now: time.Now, LeaseTimeout: 50 * time.Millisecond})
	h.enqueue(job("1"))
	if len(h.lease(1)) != 1 {
		t.Fatal("nothing leased")
	}
	drain(h.q.Wakeup())
	waitSignal(t, h.q.Wakeup(), 5*time.Second, "lease timeout")
	deadline := time.Now().Add(5 * time.Second)
	for h.stats().InFlight != 0 {
		if time.Now().After(deadline) {
			t.Fatal("lease never ended")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestLeasedJobsDueAgainAfterReopen(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	h.enqueue(job("1"), job("2"))
	if len(h.lease(10)) != 2 {
		t.Fatal("lease")
	}
	h.reopen()
	if got := h.lease(10); len(got) != 2 {
		t.Fatalf("after reopen leased %d, want 2", len(got))
	}
}

func TestWakeupOnEnqueue(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	drain(h.q.Wakeup())
	h.enqueue(job("1"))
	waitSignal(t, h.q.Wakeup(), time.Second, "enqueue")
}

func TestConcurrentWorkersEachJobOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Now: time.Now})
	const producers, perProducer, workers = 4, 250, 6
	total := producers * perProducer
	ctx := context.Background()
	var mu sync.Mutex
	seen := make(map[string]int)
	var wg sync.WaitGroup
	for p := range producers {
		wg.Go(func() {
			for i := range perProducer {
				if err := h.q.Enqueue(ctx, job(fmt.Sprintf("p%d-%d", p, i))); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	var workersWG sync.WaitGroup
	for range workers {
		workersWG.Go(func() {
			for {
				jobs, err := h.q.Lease(ctx, 7)
				if err != nil {
					t.Error(err)
					return
				}
				if len(jobs) == 0 {
					select {
					case <-done:
						return
					case <-h.q.Wakeup():
					case <-time.After(5 * time.Millisecond):
					}
					continue
				}
				mu.Lock()
				for _, j := range jobs {
					seen[j.ID]++
				}
				mu.Unlock()
				if err := h.q.Ack(ctx, ids(jobs)...); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	deadline := time.Now().Add(20 * time.Second)
	for h.stats().Delivered < uint64(total) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
	close(done)
	workersWG.Wait()
	if len(seen) != total {
		t.Fatalf("delivered %d distinct jobs, want %d", len(seen), total)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("job %s leased %d times", id, n)
		}
	}
	if s := h.stats(); s.Delivered != uint64(total) || s.Due != 0 || s.InFlight != 0 {
		t.Fatalf("final stats %+v", s)
	}
	if n := h.keyCount(bucketJobs) + h.keyCount(bucketDue); n != 0 {
		t.Fatalf("%d records left after acking everything", n)
	}
}

func TestSharedPayloadStoredOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	payload := bytes.Repeat([]byte("x"), 1000)
	var jobs []*Job
	for i := range 50 {
		j := job(fmt.Sprint(i))
		j.Payload = payload
		jobs = append(jobs, j)
	}
	other := job("solo")
	other.Payload = bytes.Repeat([]byte("y"), 1000)
	jobs = append(jobs, other)
	h.enqueue(jobs...)
	if n := h.keyCount(bucketPayloads); n != 1 {
		t.Fatalf("%d shared payload records, want 1", n)
	}
	h.reopen()
	got := h.lease(100)
	if len(got) != 51 {
		t.Fatalf("leased %d", len(got))
	}
	for _, j := range got {
		want := payload
		if j.ID == other.ID {
			want = other.Payload
		}
		if !bytes.Equal(j.Payload, want) {
			t.Fatalf("job %s payload %q...", j.ID, j.Payload[:min(10, len(j.Payload))])
		}
	}
	ctx := context.Background()
	if err := h.q.Ack(ctx, ids(got[:49])...); err != nil {
		t.Fatal(err)
	}
	if n := h.keyCount(bucketPayloads); n != 1 {
		t.Fatalf("payload released while one job still holds it (%d records)", n)
	}
	// The last holder goes through the dead letters: the payload follows.
	last := got[49]
	if last.ID == other.ID {
		last = got[50]
	}
	if err := h.q.Dead(ctx, last, "bad"); err != nil {
		t.Fatal(err)
	}
	dead, _, err := h.q.ListDead(ctx, "", 10)
	if err != nil || len(dead) != 1 || !bytes.Equal(dead[0].Payload, payload) {
		t.Fatalf("dead letter payload lost: %v %v", dead, err)
	}
	if _, err := h.q.DeleteDead(ctx, []string{last.ID}, false); err != nil {
		t.Fatal(err)
	}
	if n := h.keyCount(bucketPayloads); n != 0 {
		t.Fatalf("payload not freed after its last job: %d records", n)
	}
}

func TestCloseIdempotentAndErrClosed(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	if err := h.q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Close(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := h.q.Enqueue(ctx, job("1")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Enqueue after Close: %v", err)
	}
	if _, err := h.q.Lease(ctx, 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("Lease after Close: %v", err)
	}
	if err := h.q.Ack(ctx, "x"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Ack after Close: %v", err)
	}
}

func TestEnqueueRejectsOversizedKeys(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	j := job("1")
	j.Tag = strings.Repeat("t", maxKeyField+1)
	err := h.q.Enqueue(context.Background(), job("0"), j)
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "jobs[1]") {
		t.Fatalf("got %v", err)
	}
	if h.keyCount(bucketJobs) != 0 {
		t.Fatal("a rejected batch was partly stored")
	}
}
