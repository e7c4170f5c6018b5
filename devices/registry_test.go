package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

var bg = context.Background()

func TestRegisterUpsertByID(t *testing.T) {
	t.Parallel()
	r, clk := newRegistry(t)
	d := validDevice()
	first := register(t, r, d)
	if !first.Created || first.Replaced != "" || first.MovedFrom != "" {
		t.Fatalf("first registration: %+v", first)
	}
	created := clk.Now()
	if !first.Device.Created.Equal(created) || !first.Device.Updated.Equal(created) {
		t.Fatalf("times: %+v", first.Device)
	}

	clk.Advance(time.Hour)
	d.Name, d.Locale, d.Sandbox = "renamed", "en", true
	second := register(t, r, d)
	if second.Created {
		t.Fatal("re-registration reported Created")
	}
	got, err := r.Get(bg, d.ID)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if got.Name != "renamed" || got.Locale != "en" || !got.Sandbox {
		t.Fatalf("fields not updated: %+v", got)
	}
	if !got.Created.Equal(created) {
		t.Fatalf("Created changed to %v, want %v", got.Created, created)
	}
	if !got.Updated.Equal(clk.Now()) {
		t.Fatalf("Updated = %v, want refreshed to %v", got.Updated, clk.Now())
	}
	if n, _ := r.Count(bg); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
	if got != second.Device { // == on purpose: same location, no monotonic reading
		t.Fatalf("Get = %+v, Registration.Device = %+v", got, second.Device)
	}
}

func TestRegisterDerivedID(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	d := Device{User: "7", Platform: PlatformAPNs, Token: strings.ToUpper(apnsToken(5))}
	reg := register(t, r, d)
	if reg.Device.ID != DeriveID(PlatformAPNs, apnsToken(5)) {
		t.Fatalf("ID = %q, want derived %q", reg.Device.ID, DeriveID(PlatformAPNs, apnsToken(5)))
	}
	if reg.Device.Token != apnsToken(5) {
		t.Fatalf("token not normalized: %q", reg.Device.Token)
	}
	again := register(t, r, Device{User: "7", Platform: PlatformAPNs, Token: apnsToken(5)})
	if again.Created || again.Device.ID != reg.Device.ID {
		t.Fatalf("same token registered twice made a new device: %+v", again)
	}
	if n, _ := r.Count(bg); n != 1 {
		t.Fatalf("Count = %d, want 1", n)
	}
}

func TestRegisterRejectsInvalid(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	d := validDevice()
	d.Token = "nothex"
	_, err := r.Register(bg, d)
	var ve *ValidationError
	if !errors.As(err, &ve) || ve.Field != "token" {
		t.Fatalf("Register invalid: %v", err)
	}
	if n, _ := r.Count(bg); n != 0 {
		t.Fatalf("invalid device stored: Count = %d", n)
	}
}

func TestListByUsers(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	// "4" is a byte prefix of "42": the user index must not mix them.
	for i, u := range []string{"42", "4", "42", "43", "420"} {
		register(t, r, Device{ID: "d" + strconv.Itoa(i), User: u, Platform: PlatformFCM, Token: "fcm-" + strconv.Itoa(i)})
	}
	got, err := r.ListByUser(bg, "42")
	if err != nil {
		t.Fatalf("ListByUser: %v", err)
	}
	if !slices.Equal(ids(got), []string{"d0", "d2"}) {
		t.Fatalf("ListByUser(42) = %v", ids(got))
	}
	for _, d := range got {
		if d.User != "42" || d.Platform != PlatformFCM || d.Token != "fcm-"+d.ID[1:] {
			t.Fatalf("bad device %+v", d)
		}
	}
	if got, _ := r.ListByUser(bg, "nobody"); len(got) != 0 {
		t.Fatalf("ListByUser(nobody) = %v", got)
	}

	m, err := r.ListByUsers(bg, []string{"4", "43", "nobody", "42", "4", ""})
	if err != nil {
		t.Fatalf("ListByUsers: %v", err)
	}
	want := map[string][]string{"4": {"d1"}, "43": {"d3"}, "42": {"d0", "d2"}}
	if len(m) != len(want) {
		t.Fatalf("ListByUsers keys = %v, want %v", m, want)
	}
	for u, w := range want {
		if !slices.Equal(ids(m[u]), w) {
			t.Fatalf("ListByUsers[%s] = %v, want %v", u, ids(m[u]), w)
		}
	}
}

func TestRemove(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	d := register(t, r, validDevice()).Device
	got, err := r.Remove(bg, d.ID)
	if err != nil || got.ID != d.ID || got.Token != d.Token {
		t.Fatalf("Remove = %+v, %v", got, err)
	}
	if _, err := r.Get(bg, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after Remove: %v", err)
	}
	for _, tok := range []string{d.Token, d.VoIPToken} {
		if _, err := r.FindByToken(bg, PlatformAPNs, tok); !errors.Is(err, ErrNotFound) {
			t.Fatalf("token still indexed after Remove: %v", err)
		}
	}
	if l, _ := r.ListByUser(bg, d.User); len(l) != 0 {
		t.Fatalf("still listed: %v", ids(l))
	}
	if _, err := r.Remove(bg, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second Remove: %v", err)
	}
	if n, _ := r.Count(bg); n != 0 {
		t.Fatalf("Count = %d", n)
	}
}

func TestRemoveToken(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	d := register(t, r, validDevice()).Device

	// A dead VoIP token clears only that token.
	got, err := r.RemoveToken(bg, PlatformAPNs, strings.ToUpper(d.VoIPToken))
	if err != nil || got.VoIPToken != d.VoIPToken {
		t.Fatalf("RemoveToken(voip) = %+v, %v", got, err)
	}
	kept, err := r.Get(bg, d.ID)
	if err != nil || kept.VoIPToken != "" || kept.Token != d.Token {
		t.Fatalf("after RemoveToken(voip): %+v, %v", kept, err)
	}
	if _, err := r.FindByToken(bg, PlatformAPNs, d.VoIPToken); !errors.Is(err, ErrNotFound) {
		t.Fatalf("voip token still indexed: %v", err)
	}

	// A dead device token removes the device.
	if _, err := r.RemoveToken(bg, PlatformAPNs, d.Token); err != nil {
		t.Fatalf("RemoveToken: %v", err)
	}
	if _, err := r.Get(bg, d.ID); !errors.Is(err, ErrNotFound) {
		t.Fatalf("device kept after its token was removed: %v", err)
	}
	if _, err := r.RemoveToken(bg, PlatformAPNs, d.Token); !errors.Is(err, ErrNotFound) {
		t.Fatalf("RemoveToken(unknown) = %v", err)
	}
	var ve *ValidationError
	if _, err := r.RemoveToken(bg, "webos", "x"); !errors.As(err, &ve) || ve.Field != "platform" {
		t.Fatalf("RemoveToken(unknown platform) = %v", err)
	}
	if _, err := r.FindByToken(bg, "webos", "x"); !errors.As(err, &ve) {
		t.Fatalf("FindByToken(unknown platform) = %v", err)
	}
}

func TestPurgeRemovesOnlyStale(t *testing.T) {
	t.Parallel()
	r, clk := newRegistry(t) // StaleAfter defaults to 60 days
	register(t, r, Device{ID: "old", User: "u", Platform: PlatformFCM, Token: "old"})
	register(t, r, Device{ID: "refreshed", User: "u", Platform: PlatformFCM, Token: "refreshed"})
	clk.Advance(30 * 24 * time.Hour)
	register(t, r, Device{ID: "refreshed", User: "u", Platform: PlatformFCM, Token: "refreshed"})
	register(t, r, Device{ID: "young", User: "u", Platform: PlatformFCM, Token: "young"})

	clk.Advance(60 * 24 * time.Hour) // old: 90 days, refreshed and young: 60 days
	n, err := r.Purge(bg)
	if err != nil || n != 1 {
		t.Fatalf("Purge = %d, %v; want 1", n, err)
	}
	if l, _ := r.ListByUser(bg, "u"); !slices.Equal(ids(l), []string{"refreshed", "young"}) {
		t.Fatalf("left = %v", ids(l))
	}
	if _, err := r.FindByToken(bg, PlatformFCM, "old"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("purged token still indexed: %v", err)
	}
	clk.Advance(time.Nanosecond)
	if n, _ := r.Purge(bg); n != 2 {
		t.Fatalf("second Purge = %d, want 2", n)
	}
}

func TestPurgeManyBatches(t *testing.T) {
	t.Parallel()
	r, clk := newRegistry(t)
	const n = purgeBatch + purgeBatch/2
	for i := range n {
		register(t, r, Device{User: "u" + strconv.Itoa(i%50), Platform: PlatformFCM, Token: "t" + strconv.Itoa(i)})
	}
	clk.Advance(DefaultStaleAfter + time.Second)
	register(t, r, Device{User: "fresh", Platform: PlatformFCM, Token: "fresh"})
	got, err := r.Purge(bg)
	if err != nil || got != n {
		t.Fatalf("Purge = %d, %v; want %d", got, err, n)
	}
	if c, _ := r.Count(bg); c != 1 {
		t.Fatalf("Count = %d, want 1", c)
	}
}

func TestBackgroundPurge(t *testing.T) {
	t.Parallel()
	db := openDB(t, filepath.Join(t.TempDir(), "p.db"), true)
	defer db.Close()
	clk := newClock()
	r, err := Open(db, Options{Now: clk.Now, StaleAfter: time.Hour, PurgeInterval: time.Millisecond})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer r.Close()
	register(t, r, validDevice())
	clk.Advance(2 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for {
		if n, _ := r.Count(bg); n == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("background purge did not remove the stale device")
		}
		time.Sleep(time.Millisecond) // polling a condition, with a deadline
	}
	if err := r.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := r.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	// Close stops the purge but leaves the registry usable on the open DB.
	register(t, r, validDevice())
	clk.Advance(2 * time.Hour)
	if n, _ := r.Count(bg); n != 1 {
		t.Fatalf("Count after Close = %d", n)
	}
}

func TestPersistsAcrossReopen(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "pushpull.db")
	clk := newClock()
	db := openDB(t, path, false)
	r, err := Open(db, Options{Now: clk.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	want := register(t, r, validDevice()).Device
	r.Close()
	if err := db.Close(); err != nil {
		t.Fatalf("db.Close: %v", err)
	}

	db = openDB(t, path, false)
	defer db.Close()
	r, err = Open(db, Options{Now: clk.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer r.Close()
	got, err := r.Get(bg, want.ID)
	if err != nil || canon(got) != canon(want) {
		t.Fatalf("after reopen Get = %+v, %v; want %+v", got, err, want)
	}
	if d, err := r.FindByToken(bg, PlatformAPNs, want.VoIPToken); err != nil || d.ID != want.ID {
		t.Fatalf("after reopen FindByToken = %+v, %v", d, err)
	}
}

func TestCanceledContext(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := r.Register(ctx, validDevice()); !errors.Is(err, context.Canceled) {
		t.Fatalf("Register: %v", err)
	}
	if _, err := r.ListByUsers(ctx, []string{"42"}); !errors.Is(err, context.Canceled) {
		t.Fatalf("ListByUsers: %v", err)
	}
	if _, err := r.Purge(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Purge: %v", err)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	if err := (Options{}).Validate(); err != nil {
		t.Fatalf("zero Options: %v", err)
	}
	err := Options{StaleAfter: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "StaleAfter") {
		t.Fatalf("negative StaleAfter: %v", err)
	}
	if _, err := Open(nil, Options{}); err == nil {
		t.Fatal("Open(nil) succeeded")
	}
}

// blockingHandler holds a purge log line until the purge's context is
// canceled, so a test can tell whether Close waited for the purge goroutine.
type blockingHandler struct {
	entered chan struct{}
	done    *atomic.Bool
}

func (h blockingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h blockingHandler) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h blockingHandler) WithGroup(string) slog.Handler            { return h }
func (h blockingHandler) Handle(ctx context.Context, _ slog.Record) error {
	select {
	case h.entered <- struct{}{}:
	default:
	}
	<-ctx.Done()
	for range 100 {
		runtime.Gosched() // give a Close that does not wait time to return early
	}
	h.done.Store(true)
	return nil
}

func TestCloseWaitsForPurge(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "p.db")
	db := openDB(t, path, true)
	defer db.Close()
	clk := newClock()
	seed, err := Open(db, Options{Now: clk.Now, PurgeInterval: -1})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	register(t, seed, validDevice())
	seed.Close()
	clk.Advance(DefaultStaleAfter + time.Hour)

	h := blockingHandler{entered: make(chan struct{}, 1), done: new(atomic.Bool)}
	r, err := Open(db, Options{Now: clk.Now, PurgeInterval: time.Hour, Logger: slog.New(h)})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	<-h.entered // the purge at start removed the device and is logging it
	r.Close()
	if !h.done.Load() {
		t.Fatal("Close returned while the purge goroutine was still running")
	}
}

func TestListByUsersChunks(t *testing.T) {
	t.Parallel()
	r, _ := newRegistry(t)
	// "big" spans more than one allocation chunk and starts mid-chunk.
	counts := map[string]int{"a": 3, "big": chunkSize + 40, "c": 2}
	n := 0
	for _, u := range []string{"a", "big", "c"} {
		for range counts[u] {
			register(t, r, Device{ID: fmt.Sprintf("%s-%04d", u, n), User: u, Platform: PlatformFCM, Token: "t" + strconv.Itoa(n)})
			n++
		}
	}
	// Read order a, c, big: c shares a's chunk, right after it.
	m, err := r.ListByUsers(bg, []string{"a", "c", "big"})
	if err != nil {
		t.Fatalf("ListByUsers: %v", err)
	}
	for u, want := range counts {
		if len(m[u]) != want {
			t.Fatalf("%s: %d devices, want %d", u, len(m[u]), want)
		}
		for _, d := range m[u] {
			if d.User != u || !strings.HasPrefix(d.ID, u+"-") {
				t.Fatalf("%s got device %+v", u, d)
			}
		}
	}
	// Appending to one user's slice must not overwrite the next user's.
	_ = append(m["a"], Device{ID: "intruder"})
	if m["c"][0].ID != "c-0299" {
		t.Fatalf("append to a's slice changed c's first device to %q", m["c"][0].ID)
	}
}
