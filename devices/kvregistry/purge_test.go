package kvregistry

import (
	"errors"
	"strconv"
	"testing"
	"time"

	"github.com/pushpull/pushpull/devices"
)

// TestPurgeRemovesStaleDevices: devices not registered again within
// StaleAfter go (with their tokens and index entries); fresh ones stay;
// a device registered again is fresh.
func TestPurgeRemovesStaleDevices(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	c := &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	r := openRegistry(t, connect(t, s), Options{Now: c.Now, StaleAfter: 30 * 24 * time.Hour, PurgeInterval: time.Hour})
	for i := range 5 {
		register(t, r, devices.Device{ID: "old" + strconv.Itoa(i), User: "u" + strconv.Itoa(i), Platform: devices.PlatformFCM, Token: "old-" + strconv.Itoa(i)})
	}
	c.Advance(20 * 24 * time.Hour)
	register(t, r, devices.Device{ID: "old0", User: "u0", Platform: devices.PlatformFCM, Token: "old-0"}) // seen again
	register(t, r, devices.Device{ID: "new", User: "u9", Platform: devices.PlatformFCM, Token: "new"})
	c.Advance(15 * 24 * time.Hour)
	n, err := r.Purge(bg)
	if err != nil || n != 4 {
		t.Fatalf("Purge = %d, %v; want 4", n, err)
	}
	for _, id := range []string{"old1", "old2", "old3", "old4"} {
		if _, err := r.Get(bg, id); !errors.Is(err, devices.ErrNotFound) {
			t.Errorf("stale %s: %v", id, err)
		}
	}
	if _, err := r.FindByToken(bg, devices.PlatformFCM, "old-1"); !errors.Is(err, devices.ErrNotFound) {
		t.Errorf("token of a purged device: %v", err)
	}
	if m, _ := r.ListByUsers(bg, []string{"u0", "u1", "u9"}); len(m["u0"]) != 1 || len(m["u1"]) != 0 || len(m["u9"]) != 1 {
		t.Errorf("after purge: %+v", m)
	}
	if n, err := r.Purge(bg); err != nil || n != 0 {
		t.Fatalf("second Purge = %d, %v", n, err)
	}
}

// TestPurgeOff: without StaleAfter nothing is ever removed.
func TestPurgeOff(t *testing.T) {
	t.Parallel()
	r, c := newRegistry(t)
	register(t, r, devices.Device{ID: "d", User: "u", Platform: devices.PlatformFCM, Token: "t"})
	c.Advance(10 * 365 * 24 * time.Hour)
	if n, err := r.Purge(bg); err != nil || n != 0 {
		t.Fatalf("Purge = %d, %v", n, err)
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if err := r.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}
