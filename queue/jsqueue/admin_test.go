package jsqueue

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/pushpull/pushpull/queue"
)

func TestIdempotentSubmit(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	ctx := context.Background()
	res, dup, err := q.Submit(ctx, queue.Submission{IdempotencyKey: "k 1/é", Result: []byte("first"), Jobs: []*queue.Job{job("u1")}})
	if err != nil || dup || string(res) != "first" {
		t.Fatalf("first submit = %q %v %v", res, dup, err)
	}
	res, dup, err = q.Submit(ctx, queue.Submission{IdempotencyKey: "k 1/é", Result: []byte("second"), Jobs: []*queue.Job{job("u1")}})
	if err != nil || !dup || string(res) != "first" {
		t.Fatalf("second submit = %q %v %v, want stored result, duplicate", res, dup, err)
	}
	if got := mustLease(t, q, 10); len(got) != 1 {
		t.Fatalf("a duplicate submit stored jobs: leased %d", len(got))
	}
}

func TestIdempotentSubmitConcurrent(t *testing.T) {
	t.Parallel()
	s, _, q1 := newEnv(t, Options{})
	q2 := openQueue(t, connect(t, s), Options{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	dups := 0
	for i := range 6 {
		q := []*Queue{q1, q2}[i%2]
		wg.Go(func() {
			_, dup, err := q.Submit(context.Background(), queue.Submission{IdempotencyKey: "same", Result: []byte("r"), Jobs: []*queue.Job{job("a"), job("b")}})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			if dup {
				dups++
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	if dups != 5 {
		t.Fatalf("%d duplicates of 6 concurrent submits, want 5", dups)
	}
	if got := mustLease(t, q1, 100); len(got) != 2 {
		t.Fatalf("concurrent submits with one key stored %d jobs, want 2", len(got))
	}
}

func TestDeadLetters(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	ctx := context.Background()
	var jobs []*queue.Job
	for i := range 5 {
		jobs = append(jobs, job(fmt.Sprint("u", i)))
	}
	submit(t, q, jobs...)
	for _, j := range mustLease(t, q, 10) {
		if err := q.Dead(ctx, j, "rejected"); err != nil {
			t.Fatal(err)
		}
	}
	page1, next, err := q.ListDead(ctx, "", 3)
	if err != nil || len(page1) != 3 || next == "" {
		t.Fatalf("page 1 = %d letters, next %q, %v", len(page1), next, err)
	}
	page2, next2, err := q.ListDead(ctx, next, 3)
	if err != nil || len(page2) != 2 || next2 != "" {
		t.Fatalf("page 2 = %d letters, next %q, %v", len(page2), next2, err)
	}
	for i, d := range append(page1, page2...) {
		if d.ID != jobs[i].ID || d.Reason != "rejected" || d.DiedAt.IsZero() {
			t.Fatalf("letter %d = %+v, want job %s", i, d, jobs[i].ID)
		}
	}
	if st, _ := q.Status(ctx, jobs[0].NotificationID); len(st) != 1 || st[0].State != queue.StateDead {
		t.Fatalf("status = %+v", st)
	}

	n, err := q.RetryDead(ctx, []string{jobs[0].ID, "unknown"}, false)
	if err != nil || n != 1 {
		t.Fatalf("RetryDead = %d, %v", n, err)
	}
	got := mustLease(t, q, 10)
	if len(got) != 1 || got[0].ID != jobs[0].ID || got[0].Attempts != 0 {
		t.Fatalf("after RetryDead leased %+v", got)
	}
	n, err = q.DeleteDead(ctx, []string{jobs[1].ID}, false)
	if err != nil || n != 1 {
		t.Fatalf("DeleteDead one = %d, %v", n, err)
	}
	n, err = q.RetryDead(ctx, nil, true)
	if err != nil || n != 3 {
		t.Fatalf("RetryDead all = %d, %v", n, err)
	}
	if got := mustLease(t, q, 10); len(got) != 3 {
		t.Fatalf("after RetryDead all leased %d", len(got))
	}
	for _, j := range got {
		_ = q.Dead(ctx, j, "again")
	}
	n, err = q.DeleteDead(ctx, nil, true)
	if err != nil || n != 1 {
		t.Fatalf("DeleteDead all = %d, %v", n, err)
	}
	if left, _, _ := q.ListDead(ctx, "", 10); len(left) != 0 {
		t.Fatalf("%d letters left after DeleteDead all", len(left))
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	ctx := context.Background()
	mk := func(user, tag, sub string) *queue.Job {
		j := job(user)
		j.Tag, j.SubTag = tag, sub
		return j
	}
	keep1, gone1, gone2, keep2, leased := mk("u1", "chat", "c.1"), mk("u1", "news", "n*1"), mk("u1", "news", ""), mk("u2", "news", ""), mk("u1", "news", "x")
	submit(t, q, leased)
	if got := mustLease(t, q, 1); len(got) != 1 {
		t.Fatal("lease")
	}
	submit(t, q, keep1, gone1, gone2, keep2)
	n, err := q.Cancel(ctx, queue.CancelFilter{Users: []string{"u1"}, Tag: "news"})
	if err != nil || n != 2 {
		t.Fatalf("Cancel = %d, %v; want 2", n, err)
	}
	st, _ := q.Status(ctx, gone1.NotificationID)
	states := map[string]string{}
	for _, s := range st {
		states[s.JobID] = s.State
	}
	if states[gone1.ID] != queue.StateCancelled || states[gone2.ID] != queue.StateCancelled || states[keep1.ID] != queue.StateQueued || states[leased.ID] != queue.StateSending {
		t.Fatalf("states after cancel = %v", states)
	}
	got := mustLease(t, q, 10)
	if len(got) != 2 || got[0].ID != keep1.ID || got[1].ID != keep2.ID {
		t.Fatalf("after cancel leased %v, want [%s %s]", ids(got), keep1.ID, keep2.ID)
	}
	n, err = q.Cancel(ctx, queue.CancelFilter{SubTag: "c.1"})
	if err != nil || n != 0 {
		t.Fatalf("Cancel of a leased job = %d, %v", n, err)
	}
	if _, err := q.Cancel(ctx, queue.CancelFilter{Users: []string{"u1"}}); err == nil {
		t.Fatal("Cancel without tag accepted")
	}
}

// TestCollapseReplacesQueuedJob: a new job for a user and sub tag replaces
// the queued (not leased) jobs an earlier Submit stored for them, as in the
// bbolt queue; jobs of one Submit never collapse each other.
func TestCollapseReplacesQueuedJob(t *testing.T) {
	t.Parallel()
	_, _, q := newEnv(t, Options{})
	ctx := context.Background()
	mk := func(user, notif string) *queue.Job {
		j := job(user)
		j.NotificationID, j.Tag, j.SubTag = notif, "IM", "CHAT_17"
		return j
	}
	sending := mk("u", "n0")
	submit(t, q, sending)
	if got := mustLease(t, q, 1); len(got) != 1 {
		t.Fatal("lease")
	}
	old1, old2, other := mk("u", "n1"), mk("u", "n1"), mk("v", "n1")
	submit(t, q, old1, old2, other)
	new1, new2 := mk("u", "n2"), mk("u", "n2")
	submit(t, q, new1, new2)
	st, err := q.Status(ctx, "n1")
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, s := range st {
		states[s.JobID] = s.State
	}
	if states[old1.ID] != queue.StateCollapsed || states[old2.ID] != queue.StateCollapsed || states[other.ID] != queue.StateQueued {
		t.Fatalf("states of the old notification: %v", states)
	}
	got := ids(mustLease(t, q, 10))
	slices.Sort(got)
	want := []string{other.ID, new1.ID, new2.ID}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("leased %v, want %v (the leased job is not collapsed)", got, want)
	}
}
