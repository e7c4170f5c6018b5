package queue

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

func tagged(user, tag, sub string) *Job {
	j := job(user)
	j.Tag, j.SubTag = tag, sub
	return j
}

func TestCancelByUserAndTag(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	a1 := tagged("a", "IM", "IM_1")
	a2 := tagged("a", "IM", "IM_2")
	aOther := tagged("a", "IMX", "IM_3") // tag "IMX" must not match "IM"
	b1 := tagged("b", "IM", "IM_1")
	inFlight := tagged("a", "IM", "IM_4")
	h.enqueue(inFlight)
	if got := h.lease(1); len(got) != 1 {
		t.Fatal("lease")
	}
	h.enqueue(a1, a2, aOther, b1)

	if _, err := h.q.Cancel(ctx, CancelFilter{Users: []string{"a"}}); !errors.Is(err, ErrInvalid) {
		t.Fatalf("cancel without tag: %v", err)
	}
	n, err := h.q.Cancel(ctx, CancelFilter{Users: []string{"a"}, Tag: "IM"})
	if err != nil || n != 2 {
		t.Fatalf("cancel a/IM: %d %v", n, err)
	}
	h.clock.Advance(time.Hour) // let the in-flight lease lapse
	left := ids(h.lease(10))
	slices.Sort(left)
	want := []string{aOther.ID, b1.ID, inFlight.ID}
	slices.Sort(want)
	if !slices.Equal(left, want) {
		t.Fatalf("left %v, want %v (in-flight job must survive)", left, want)
	}
}

func TestCancelBySubTagAllUsers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	a := tagged("a", "IM", "IM_1")
	a.NotificationID = "n"
	b := tagged("b", "IM", "IM_1")
	c := tagged("c", "IM", "IM_2")
	d := tagged("d", "OTHER", "IM_1")
	h.enqueue(a, b, c, d)
	// Both tag and sub tag: a job must match both.
	n, err := h.q.Cancel(ctx, CancelFilter{Tag: "IM", SubTag: "IM_1"})
	if err != nil || n != 2 {
		t.Fatalf("cancel sub tag: %d %v", n, err)
	}
	st, _ := h.q.Status(ctx, "n")
	if st[0].State != StateCancelled {
		t.Fatalf("status %+v", st)
	}
	left := ids(h.lease(10))
	if len(left) != 2 || !slices.Contains(left, c.ID) || !slices.Contains(left, d.ID) {
		t.Fatalf("left %v", left)
	}
	if s := h.stats(); s.Due != 0 || s.InFlight != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func TestCollapseReplacesQueuedJob(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	old1 := tagged("u", "IM", "CHAT_17")
	old1.NotificationID = "n1"
	old2 := tagged("u", "IM", "CHAT_17") // second device, same notification
	old2.NotificationID = "n1"
	sending := tagged("u", "IM", "CHAT_17")
	other := tagged("v", "IM", "CHAT_17") // other user: untouched
	h.enqueue(sending)
	h.lease(1)
	h.enqueue(old1, old2, other)
	if s := h.stats(); s.Due != 3 {
		t.Fatalf("jobs of one call collapsed each other: %+v", s)
	}
	n1 := tagged("u", "IM", "CHAT_17")
	n1.NotificationID = "n2"
	n2 := tagged("u", "IM", "CHAT_17")
	n2.NotificationID = "n2"
	h.enqueue(n1, n2)
	st, err := h.q.Status(ctx, "n1")
	if err != nil || len(st) != 2 || st[0].State != StateCollapsed || st[1].State != StateCollapsed {
		t.Fatalf("old notification status %+v %v", st, err)
	}
	got := ids(h.lease(10))
	slices.Sort(got)
	want := []string{other.ID, n1.ID, n2.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("leased %v, want %v", got, want)
	}
	if s := h.stats(); s.InFlight != 4 {
		t.Fatalf("the in-flight job was collapsed: %+v", s)
	}
}

func TestIdempotentSubmit(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{IdempotencyWindow: time.Hour})
	ctx := context.Background()
	sub := func(result string) ([]byte, bool) {
		t.Helper()
		r, dup, err := h.q.Submit(ctx, Submission{IdempotencyKey: "msg-1", Result: []byte(result), Jobs: []*Job{job("1"), job("2")}})
		if err != nil {
			t.Fatal(err)
		}
		return r, dup
	}
	if r, dup := sub("first"); dup || string(r) != "first" {
		t.Fatalf("first submit: %q %v", r, dup)
	}
	h.reopen()
	if r, dup := sub("second"); !dup || string(r) != "first" {
		t.Fatalf("duplicate submit: %q %v", r, dup)
	}
	if s := h.stats(); s.Due != 2 {
		t.Fatalf("duplicate stored jobs: %+v", s)
	}
	h.clock.Advance(time.Hour)
	if r, dup := sub("third"); dup || string(r) != "third" {
		t.Fatalf("after window: %q %v", r, dup)
	}
	if s := h.stats(); s.Due != 4 {
		t.Fatalf("after window jobs not stored: %+v", s)
	}
	// The renewed key must survive the pruning of its old time entry.
	if err := h.q.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, dup := sub("fourth"); !dup {
		t.Fatal("renewed key pruned with its predecessor")
	}
}

func TestConcurrentSubmitSameKeyStoresOnce(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	results := make(chan bool, 8)
	for range 8 {
		go func() {
			_, dup, err := h.q.Submit(ctx, Submission{IdempotencyKey: "k", Jobs: []*Job{job("1")}})
			if err != nil {
				t.Error(err)
			}
			results <- dup
		}()
	}
	fresh := 0
	for range 8 {
		if !<-results {
			fresh++
		}
	}
	if fresh != 1 || h.stats().Due != 1 {
		t.Fatalf("%d submits stored, %d jobs", fresh, h.stats().Due)
	}
}

func deadN(t *testing.T, h *harness, n int) []string {
	t.Helper()
	ctx := context.Background()
	var out []string
	for i := range n {
		h.enqueue(job(fmt.Sprint(i)))
		j := h.lease(1)[0]
		if err := h.q.Dead(ctx, j, fmt.Sprint("reason-", i)); err != nil {
			t.Fatal(err)
		}
		out = append(out, j.ID)
		h.clock.Advance(time.Second)
	}
	return out
}

func TestDeadListRetryDelete(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	all := deadN(t, h, 7)
	var listed []string
	cursor := ""
	pages := 0
	for {
		page, next, err := h.q.ListDead(ctx, cursor, 3)
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, d := range page {
			listed = append(listed, d.ID)
			if d.Reason == "" || d.DiedAt.IsZero() {
				t.Fatalf("dead letter without reason/time: %+v", d)
			}
		}
		if next == "" {
			break
		}
		cursor = next
	}
	if !slices.Equal(listed, all) || pages != 3 {
		t.Fatalf("listed %v in %d pages, want %v in 3", listed, pages, all)
	}
	if _, _, err := h.q.ListDead(ctx, "zz", 3); !errors.Is(err, ErrInvalid) {
		t.Fatalf("bad cursor: %v", err)
	}
	n, err := h.q.RetryDead(ctx, []string{all[0], all[1], "unknown"}, false)
	if err != nil || n != 2 {
		t.Fatalf("RetryDead: %d %v", n, err)
	}
	back := h.lease(10)
	if len(back) != 2 || back[0].Attempts != 0 {
		t.Fatalf("retried jobs %+v", back)
	}
	n, err = h.q.DeleteDead(ctx, []string{all[2]}, false)
	if err != nil || n != 1 {
		t.Fatalf("DeleteDead: %d %v", n, err)
	}
	if s := h.stats(); s.Dead != 4 {
		t.Fatalf("dead %d, want 4", s.Dead)
	}
	n, err = h.q.DeleteDead(ctx, nil, true)
	if err != nil || n != 4 || h.stats().Dead != 0 || h.keyCount(bucketDeadTime) != 0 {
		t.Fatalf("DeleteDead all: %d %v", n, err)
	}
	deadN(t, h, 2)
	if n, err := h.q.RetryDead(ctx, nil, true); err != nil || n != 2 || len(h.lease(10)) != 2 {
		t.Fatalf("RetryDead all: %d %v", n, err)
	}
}

func TestPruneDeadByAgeAndCount(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{DeadRetention: time.Hour, DeadMax: 3, MaxBatch: 2})
	ctx := context.Background()
	all := deadN(t, h, 6) // died 1s apart
	if err := h.q.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	dead, _, _ := h.q.ListDead(ctx, "", 100)
	if got := ids(deadJobs(dead)); !slices.Equal(got, all[3:]) {
		t.Fatalf("after count prune %v, want newest 3 %v", got, all[3:])
	}
	h.clock.Advance(time.Hour - 3*time.Second) // all[3] (died at +3s, now +6s) is now 1h old
	if err := h.q.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	dead, _, _ = h.q.ListDead(ctx, "", 100)
	if got := ids(deadJobs(dead)); !slices.Equal(got, all[4:]) {
		t.Fatalf("after age prune %v, want %v", got, all[4:])
	}
	if s := h.stats(); s.Dead != 2 || h.keyCount(bucketDeadTime) != 2 {
		t.Fatalf("stats %+v", s)
	}
}

func deadJobs(d []DeadJob) []*Job {
	out := make([]*Job, len(d))
	for i := range d {
		out[i] = &d[i].Job
	}
	return out
}

func TestPruneStatusRecords(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{StatusRetention: time.Hour})
	ctx := context.Background()
	done := job("1")
	done.NotificationID = "done"
	waiting := job("2")
	waiting.NotificationID = "waiting"
	waiting.NotBefore = h.clock.Now().Add(48 * time.Hour)
	h.enqueue(done, waiting)
	if err := h.q.Ack(ctx, h.lease(1)[0].ID); err != nil {
		t.Fatal(err)
	}
	st, err := h.q.Status(ctx, "done")
	if err != nil || st[0].State != StateDelivered {
		t.Fatalf("status %+v %v", st, err)
	}
	h.clock.Advance(time.Hour - time.Second)
	h.q.Prune(ctx)
	if _, err := h.q.Status(ctx, "done"); err != nil {
		t.Fatalf("pruned before retention: %v", err)
	}
	h.clock.Advance(time.Second)
	if err := h.q.Prune(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := h.q.Status(ctx, "done"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("finished status after retention: %v", err)
	}
	if st, err := h.q.Status(ctx, "waiting"); err != nil || st[0].State != StateQueued {
		t.Fatalf("status of a still-queued job pruned: %+v %v", st, err)
	}
}

func TestStatusLifecycle(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{Random: func() float64 { return 0 }})
	ctx := context.Background()
	if _, err := h.q.Status(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("unknown: %v", err)
	}
	a, b := job("1"), job("2")
	a.NotificationID, b.NotificationID = "n", "n"
	h.enqueue(a, b)
	states := func() []string {
		st, err := h.q.Status(ctx, "n")
		if err != nil {
			t.Fatal(err)
		}
		return []string{st[0].State, st[1].State}
	}
	if s := states(); !slices.Equal(s, []string{StateQueued, StateQueued}) {
		t.Fatalf("%v", s)
	}
	la := h.lease(1)[0]
	if s := states(); !slices.Equal(s, []string{StateSending, StateQueued}) {
		t.Fatalf("%v", s)
	}
	if err := h.q.Retry(ctx, la, time.Minute, "503"); err != nil {
		t.Fatal(err)
	}
	st, _ := h.q.Status(ctx, "n")
	if st[0].State != StateRetrying || st[0].Attempts != 1 || st[0].LastError != "503" || !st[0].NextAttempt.Equal(h.clock.Now().Add(time.Minute)) {
		t.Fatalf("retrying status %+v", st[0])
	}
	lb := h.lease(1)[0]
	if err := h.q.Ack(ctx, lb.ID); err != nil {
		t.Fatal(err)
	}
	if s := states(); !slices.Equal(s, []string{StateRetrying, StateDelivered}) {
		t.Fatalf("%v", s)
	}
}

func TestStatsNumbers(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	deferred := job("d")
	deferred.NotBefore = h.clock.Now().Add(time.Hour)
	h.enqueue(job("1"), job("2"), job("3"), job("4"), deferred)
	h.clock.Advance(10 * time.Second)
	l := h.lease(2)
	if err := h.q.Ack(ctx, l[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := h.q.Dead(ctx, l[1], "x"); err != nil {
		t.Fatal(err)
	}
	h.lease(1)
	want := Stats{Due: 1, Deferred: 1, InFlight: 1, Dead: 1, OldestDueAge: 10 * time.Second, Delivered: 1, DeadTotal: 1}
	if got := h.stats(); got != want {
		t.Fatalf("stats\n got %+v\nwant %+v", got, want)
	}
	h.reopen()
	want = Stats{Due: 2, Deferred: 1, Dead: 1, OldestDueAge: 10 * time.Second}
	if got := h.stats(); got != want {
		t.Fatalf("stats after reopen\n got %+v\nwant %+v", got, want)
	}
}

func TestCompactKeepsJobs(t *testing.T) {
	t.Parallel()
	h := newHarness(t, Options{})
	ctx := context.Background()
	var keep []*Job
	for i := range 300 {
		j := job(fmt.Sprint(i))
		j.Payload = make([]byte, 2000)
		h.enqueue(j)
		keep = append(keep, j)
	}
	if err := h.q.Ack(ctx, ids(keep[:250])...); err != nil {
		t.Fatal(err)
	}
	keep = keep[250:]
	h.close()
	dst := filepath.Join(t.TempDir(), "compact.db")
	if err := Compact(dst, h.path); err != nil {
		t.Fatal(err)
	}
	if err := Compact(dst, h.path); !errors.Is(err, ErrInvalid) {
		t.Fatalf("compact onto an existing file: %v", err)
	}
	h.path = dst
	h.open()
	got := ids(h.lease(1000))
	if !slices.Equal(got, ids(keep)) {
		t.Fatalf("compacted db has %d jobs, want %d", len(got), len(keep))
	}
	err := h.db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
