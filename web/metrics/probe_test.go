package metrics

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func openDB(t *testing.T, path string, o *bolt.Options) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(path, 0o600, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func newProbe(t *testing.T, db *bolt.DB, o ProbeOptions) *DBProbe {
	t.Helper()
	p, err := NewDBProbe(db, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// The probe writes, caches its answer for Interval, and reports a closed
// database as not writable.
func TestProbeCachesAndSeesClosedDB(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	db := openDB(t, filepath.Join(t.TempDir(), "p.db"), nil)
	p := newProbe(t, db, ProbeOptions{Now: clk.Now, MinFreeBytes: -1})
	writes := func() int64 { st := db.Stats(); return st.TxStats.GetWrite() }

	if err := p.Check(); err != nil {
		t.Fatalf("fresh db: %v", err)
	}
	w := writes()
	if w == 0 {
		t.Fatal("the probe wrote nothing")
	}
	for range 10 {
		if err := p.Check(); err != nil {
			t.Fatal(err)
		}
	}
	if writes() != w {
		t.Fatalf("cached checks wrote: %d -> %d", w, writes())
	}
	clk.Advance(DefaultProbeInterval)
	if err := p.Check(); err != nil || writes() == w {
		t.Fatalf("after the interval: err %v, writes %d -> %d", err, w, writes())
	}

	db.Close()
	if err := p.Check(); err != nil {
		t.Fatalf("within the interval the cached answer stands: %v", err)
	}
	clk.Advance(DefaultProbeInterval)
	if err := p.Check(); !errors.Is(err, ErrDBNotWritable) || !errors.Is(err, bolt.ErrDatabaseNotOpen) {
		t.Fatalf("closed db: %v", err)
	}
	p.Close()
	p.Close()
	if err := p.Check(); !errors.Is(err, ErrProbeClosed) {
		t.Fatalf("after Close: %v", err)
	}
}

func TestProbeReadOnlyDB(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "ro.db")
	rw := openDB(t, path, nil)
	rw.Close()
	db := openDB(t, path, &bolt.Options{ReadOnly: true})
	p := newProbe(t, db, ProbeOptions{MinFreeBytes: -1})
	if err := p.Check(); !errors.Is(err, ErrDBNotWritable) || !errors.Is(err, bolt.ErrDatabaseReadOnly) {
		t.Fatalf("read-only db: %v", err)
	}
}

// A write stuck behind another write transaction reports a timeout, and
// later checks get that answer at once until the write completes.
func TestProbeTimeout(t *testing.T) {
	t.Parallel()
	clk := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	db := openDB(t, filepath.Join(t.TempDir(), "t.db"), nil)
	p := newProbe(t, db, ProbeOptions{Now: clk.Now, Timeout: 20 * time.Millisecond, MinFreeBytes: -1})
	tx, err := db.Begin(true) // holds the writer lock
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Check(); !errors.Is(err, ErrProbeTimeout) {
		t.Fatalf("stuck write: %v", err)
	}
	start := time.Now()
	if err := p.Check(); !errors.Is(err, ErrProbeTimeout) || time.Since(start) > 10*time.Millisecond {
		t.Fatalf("cached timeout: %v after %v", err, time.Since(start))
	}
	if err := tx.Rollback(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the probe to recover", func() bool {
		clk.Advance(DefaultProbeInterval)
		return p.Check() == nil
	})
}

// mountTmpfs mounts a size-limited tmpfs, or skips when this process may
// not mount.
func mountTmpfs(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a tmpfs here (%v: %s)", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return dir
}

// A database on a full file system is not ready, and is again once space
// is freed; a file system remounted read-only is not writable.
func TestProbeFullAndReadOnlyFileSystem(t *testing.T) {
	dir := mountTmpfs(t, "4m")
	clk := &fakeClock{now: time.Unix(1_800_000_000, 0)}
	db := openDB(t, filepath.Join(dir, "full.db"), nil)
	p := newProbe(t, db, ProbeOptions{Now: clk.Now, MinFreeBytes: 512 << 10})
	if err := p.Check(); err != nil {
		t.Fatalf("empty fs: %v", err)
	}
	filler := filepath.Join(dir, "filler")
	f, err := os.Create(filler)
	if err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			break // ENOSPC: the disk is full
		}
	}
	f.Close()
	clk.Advance(DefaultProbeInterval)
	if err := p.Check(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("full fs: %v", err)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	clk.Advance(DefaultProbeInterval)
	if err := p.Check(); err != nil {
		t.Fatalf("after freeing space: %v", err)
	}

	if out, err := exec.Command("mount", "-o", "remount,ro", dir).CombinedOutput(); err != nil {
		t.Logf("cannot remount read-only with the database open (%v: %s); read-only covered by TestProbeReadOnlyDB", err, out)
		return
	}
	t.Cleanup(func() { _ = exec.Command("mount", "-o", "remount,rw", dir).Run() })
	clk.Advance(DefaultProbeInterval)
	if err := p.Check(); !errors.Is(err, ErrDBNotWritable) {
		t.Fatalf("read-only fs: %v", err)
	}
}

func TestProbeOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, o := range []ProbeOptions{{Interval: -1}, {Timeout: -1}} {
		if err := o.Validate(); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("%+v: %v", o, err)
		}
	}
	if _, err := NewDBProbe(nil, ProbeOptions{}); !errors.Is(err, ErrInvalidOptions) {
		t.Errorf("nil db: %v", err)
	}
}
