package web

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/web/metrics"
)

type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// /readyz over a real bbolt file and the write probe: 503 while starting,
// 200 while serving, 503 once the database cannot be written, 503 while
// draining; /healthz stays 200 throughout.
func TestReadyzStartingDBAndDraining(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "r.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	clk := &stepClock{now: time.Unix(1_800_000_000, 0)}
	probe, err := metrics.NewDBProbe(db, metrics.ProbeOptions{Now: clk.Now, MinFreeBytes: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	s, err := New(Options{
		APIAddr: "127.0.0.1:0", ClientAddr: "127.0.0.1:0", Version: "test",
		Ready: probe.Check, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	s.API.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if rec.Code != http.StatusServiceUnavailable || !errors.Is(s.Ready(), ErrStarting) {
		t.Fatalf("before Serve: %d %v", rec.Code, s.Ready())
	}
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	s.Serve()
	defer s.Shutdown(t.Context())
	base := "http://" + s.APIAddr()
	if code, m := get(t, base+"/readyz"); code != 200 || m["status"] != "ready" {
		t.Fatalf("serving: %d %v", code, m)
	}

	db.Close() // the database can no longer be written
	clk.Advance(metrics.DefaultProbeInterval)
	code, m := get(t, base+"/readyz")
	if e, _ := m["error"].(map[string]any); code != 503 || e["code"] != "unavailable" {
		t.Fatalf("closed db: %d %v", code, m)
	}
	if err := s.Ready(); !errors.Is(err, metrics.ErrDBNotWritable) {
		t.Fatalf("Ready: %v", err)
	}
	if code, _ := get(t, base+"/healthz"); code != 200 {
		t.Fatalf("healthz with a closed db: %d", code)
	}

	s.Drain()
	if code, _ := get(t, base+"/readyz"); code != 503 || !errors.Is(s.Ready(), ErrDraining) {
		t.Fatalf("draining: %d %v", code, s.Ready())
	}
}
