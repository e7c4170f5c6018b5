package devices

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

// clock is an injectable, manually advanced clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// openDB opens a real bbolt file in a temp dir. noSync trades durability
// for speed in tests that do not reopen the file.
func openDB(t testing.TB, path string, noSync bool) *bbolt.DB {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second, NoSync: noSync})
	if err != nil {
		t.Fatalf("bbolt.Open: %v", err)
	}
	return db
}

// newRegistry opens a registry on a fresh file with a manual clock and no
// background purge, both closed at cleanup.
func newRegistry(t testing.TB) (*Registry, *clock) {
	t.Helper()
	db := openDB(t, filepath.Join(t.TempDir(), "pushpull.db"), true)
	clk := newClock()
	r, err := Open(db, Options{Now: clk.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		checkConsistent(t, r)
		r.Close()
		db.Close()
	})
	return r, clk
}

// apnsToken returns a distinct valid lower-case APNs token for n: "abab…"
// ending in n as 8 hex digits. The letters make case folding visible.
func apnsToken(n int) string {
	return strings.Repeat("ab", 28) + fmt.Sprintf("%08x", n)
}

func register(t testing.TB, r *Registry, d Device) Registration {
	t.Helper()
	reg, err := r.Register(context.Background(), d)
	if err != nil {
		t.Fatalf("Register(%+v): %v", d, err)
	}
	return reg
}

func ids(ds []Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// canon strips location and monotonic readings so devices compare with ==.
func canon(d Device) Device {
	d.Created = d.Created.UTC().Round(0)
	d.Updated = d.Updated.UTC().Round(0)
	return d
}
