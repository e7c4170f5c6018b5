package queue

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// clock is an injectable clock for Options.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type harness struct {
	t     testing.TB
	path  string
	db    *bbolt.DB
	q     *Queue
	clock *clock
	opts  Options
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHarness opens a queue on a fresh bbolt file with a fake clock. The
// returned opts are reused by reopen.
func newHarness(t testing.TB, opts Options) *harness {
	t.Helper()
	h := &harness{t: t, path: filepath.Join(t.TempDir(), "q.db"), clock: newClock()}
	if opts.Now == nil {
		opts.Now = h.clock.Now
	}
	if opts.Logger == nil {
		opts.Logger = quietLogger()
	}
	h.opts = opts
	h.open()
	t.Cleanup(h.close)
	return h
}

func (h *harness) open() {
	h.t.Helper()
	db, err := bbolt.Open(h.path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		h.t.Fatal(err)
	}
	q, err := Open(db, h.opts)
	if err != nil {
		db.Close()
		h.t.Fatal(err)
	}
	h.db, h.q = db, q
}

func (h *harness) close() {
	if h.q != nil {
		h.q.Close()
		h.q = nil
	}
	if h.db != nil {
		h.db.Close()
		h.db = nil
	}
}

func (h *harness) reopen() {
	h.t.Helper()
	h.close()
	h.open()
}

func (h *harness) enqueue(jobs ...*Job) {
	h.t.Helper()
	if err := h.q.Enqueue(context.Background(), jobs...); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) lease(max int) []*Job {
	h.t.Helper()
	jobs, err := h.q.Lease(context.Background(), max)
	if err != nil {
		h.t.Fatal(err)
	}
	return jobs
}

func (h *harness) stats() Stats {
	h.t.Helper()
	s, err := h.q.Stats()
	if err != nil {
		h.t.Fatal(err)
	}
	return s
}

// keyCount counts the keys of one of the queue's buckets.
func (h *harness) keyCount(bucket []byte) int {
	h.t.Helper()
	n := 0
	err := h.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, v []byte) error { n++; return nil })
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}

func ids(jobs []*Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func job(user string) *Job {
	return &Job{User: user, DeviceID: "dev-" + user, Platform: "fcm", AppID: "app", Token: "tok-" + user, Payload: []byte(`{"t":"` + user + `"}`)}
}

// waitSignal waits for a value on ch, failing after d.
func waitSignal(t testing.TB, ch <-chan struct{}, d time.Duration, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(d):
		t.Fatalf("no signal within %v: %s", d, what)
	}
}

func drain(ch <-chan struct{}) {
	select {
	case <-ch:
	default:
	}
}
