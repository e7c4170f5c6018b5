package kvstate

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

// twoWatches opens two Watches on separate connections: two nodes.
func twoWatches(t *testing.T, o WatchOptions) (a, b *Watches, js jetstream.JetStream) {
	t.Helper()
	s := startServer(t, t.TempDir())
	na, nb := connect(t, s), connect(t, s)
	return openWatches(t, na.js, o), openWatches(t, nb.js, o), na.js
}

func TestWatchesSharedBetweenNodes(t *testing.T) {
	t.Parallel()
	a, b, _ := twoWatches(t, WatchOptions{})
	if err := a.Add([]string{"u2", "u1"}, []string{"t1", "t2"}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see A's watches", func() bool {
		return slices.Equal(b.Watchers("t1", t0), []string{"u1", "u2"}) && len(b.Watchers("t2", t0)) == 2
	})
	if got := b.TagsOf("u1", t0); !slices.Equal(got, []string{"t1", "t2"}) {
		t.Fatalf("B.TagsOf(u1) = %v", got)
	}
	// Extend on B renews what A wrote, and A sees the renewal.
	had, err := b.Extend([]string{"u1"}, []string{"t1", "nope"}, t0.Add(50*time.Second))
	if err != nil || !had["t1"] || had["nope"] || len(had) != 2 {
		t.Fatalf("B.Extend = %v, %v", had, err)
	}
	late := t0.Add(90 * time.Second)
	eventually(t, "A to see B's renewal", func() bool { return slices.Equal(a.Watchers("t1", late), []string{"u1"}) })
	// Remove on B of everything u2 has.
	if n, err := b.Remove([]string{"u2"}, nil); n != 2 || err != nil {
		t.Fatalf("B.Remove(u2, all) = %d, %v", n, err)
	}
	eventually(t, "A to see B's removal", func() bool { return !a.Known("u2", "t1") && !a.Known("u2", "t2") })
	if got := a.Watchers("t1", t0); !slices.Equal(got, []string{"u1"}) {
		t.Fatalf("A.Watchers(t1) = %v", got)
	}
}

// The sequence mirrors what live's in-process store answers, step by step.
func TestWatchesSemantics(t *testing.T) {
	t.Parallel()
	w, _, js := twoWatches(t, WatchOptions{MaxTTL: time.Hour})
	ab, t12 := []string{"b", "a"}, []string{"t2", "t1"}
	if err := w.Add(ab, t12, 10*time.Second, t0); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]string{"a"}, []string{"t3"}, 30*time.Second, t0); err != nil {
		t.Fatal(err)
	}
	// Own writes are read at once, sorted.
	check := func(step string, got, want []string) {
		t.Helper()
		if !slices.Equal(got, want) {
			t.Fatalf("%s = %v, want %v", step, got, want)
		}
	}
	check("Watchers(t1, t0)", w.Watchers("t1", t0), []string{"a", "b"})
	check("TagsOf(a, t0)", w.TagsOf("a", t0), []string{"t1", "t2", "t3"})
	// Expired at exactly expires, but still known.
	check("Watchers(t1, t0+10s)", w.Watchers("t1", t0.Add(10*time.Second)), nil)
	check("TagsOf(a, t0+10s)", w.TagsOf("a", t0.Add(10*time.Second)), []string{"t3"})
	if !w.Known("a", "t1") || w.Known("a", "t9") || w.Known("c", "t1") {
		t.Fatal("Known wrong after expiry")
	}
	// Extend renews an expired-but-known watch by its own TTL (10s for t1,
	// 30s for t3), not by a shared one.
	at := t0.Add(15 * time.Second)
	had, err := w.Extend([]string{"a", "c"}, []string{"t1", "t3", "t9"}, at)
	if err != nil || !maps3(had, true, true, false) {
		t.Fatalf("Extend = %v, %v", had, err)
	}
	check("Watchers(t1, +24s)", w.Watchers("t1", t0.Add(24*time.Second)), []string{"a"})
	check("Watchers(t1, +25s)", w.Watchers("t1", t0.Add(25*time.Second)), nil)
	check("TagsOf(a, +44s)", w.TagsOf("a", t0.Add(44*time.Second)), []string{"t3"})
	check("TagsOf(b, +15s)", w.TagsOf("b", at), nil)
	// Sweep: b's watches expired at +10s and stay known until +20s.
	w.Sweep(t0.Add(20 * time.Second))
	if !w.Known("b", "t1") {
		t.Fatal("swept within one TTL after expiry")
	}
	w.Sweep(t0.Add(21 * time.Second))
	if w.Known("b", "t1") || w.Known("b", "t2") || w.Known("a", "t2") || !w.Known("a", "t1") || !w.Known("a", "t3") {
		t.Fatal("Sweep dropped the wrong entries")
	}
	// ... and deleted their keys from the bucket.
	kv := rawKV(t, js, DefaultWatchBucket)
	for _, k := range []string{watchKey("t1", "b"), watchKey("t2", "b"), watchKey("t2", "a")} {
		if _, err := kv.Get(bg, k); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Fatalf("swept key %s: Get = %v", k, err)
		}
	}
	if _, err := kv.Get(bg, watchKey("t1", "a")); err != nil {
		t.Fatalf("live key gone: %v", err)
	}
	// Remove counts what existed; no tags means all of the user's.
	if n, err := w.Remove([]string{"b"}, []string{"t1"}); n != 0 || err != nil {
		t.Fatalf("Remove(missing) = %d, %v", n, err)
	}
	if n, err := w.Remove([]string{"a", "b"}, nil); n != 2 || err != nil {
		t.Fatalf("Remove(a,b all) = %d, %v", n, err)
	}
	if w.Known("a", "t1") || w.Known("a", "t3") || len(w.byTag) != 0 || len(w.byUsr) != 0 {
		t.Fatalf("replica not empty after removing all: %v %v", w.byTag, w.byUsr)
	}
	// Extend of nothing reports every tag false.
	if had, err := w.Extend([]string{"a"}, []string{"t1"}, at); err != nil || len(had) != 1 || had["t1"] {
		t.Fatalf("Extend after Remove = %v, %v", had, err)
	}
	for _, ttl := range []time.Duration{0, -time.Second, time.Hour + time.Millisecond} {
		if err := w.Add(ab, t12, ttl, t0); !errors.Is(err, ErrTTL) {
			t.Fatalf("Add(ttl %v) = %v, want ErrTTL", ttl, err)
		}
	}
}

func maps3(m map[string]bool, t1, t3, t9 bool) bool {
	return len(m) == 3 && m["t1"] == t1 && m["t3"] == t3 && m["t9"] == t9
}

func TestWatchesLateNodeLoadsBeforeOpenReturns(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openWatches(t, connect(t, s).js, WatchOptions{})
	var users []string
	for i := range 300 {
		users = append(users, "user-"+string(rune('a'+i%26))+strings.Repeat("x", i/26))
	}
	if err := a.Add(users, []string{"news"}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Remove([]string{users[0]}, []string{"news"}); err != nil {
		t.Fatal(err)
	}
	c := openWatches(t, connect(t, s).js, WatchOptions{})
	// No waiting: Open returned after the initial values.
	if got := c.Watchers("news", t0); len(got) != len(users)-1 || slices.Contains(got, users[0]) {
		t.Fatalf("late node sees %d watchers, want %d without %s", len(got), len(users)-1, users[0])
	}
}

func TestWatchesOddNamesRoundTrip(t *testing.T) {
	t.Parallel()
	a, b, _ := twoWatches(t, WatchOptions{})
	odd := []string{"a b", "x.y", "ключ", "*", ">", "", "a/b", "=", "t.*.>", "🙂", "a\tb", strings.Repeat("z", 200)}
	if err := a.Add(odd, odd, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	want := slices.Clone(odd)
	slices.Sort(want)
	for _, tag := range odd {
		eventually(t, "B to see tag "+tag, func() bool { return slices.Equal(b.Watchers(tag, t0), want) })
	}
	for _, u := range odd {
		if got := b.TagsOf(u, t0); !slices.Equal(got, want) {
			t.Fatalf("B.TagsOf(%q) = %q", u, got)
		}
	}
	if b.Skipped() != 0 {
		t.Fatalf("Skipped = %d", b.Skipped())
	}
}

func TestWatchesSkipUndecodable(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openWatches(t, connect(t, s).js, WatchOptions{})
	kv := rawKV(t, connect(t, s).js, DefaultWatchBucket)
	if err := a.Add([]string{"u"}, []string{"good", "doomed"}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	bad := map[string]string{
		watchKey("t", "v1"):     "garbage",
		watchKey("t", "v2"):     "1:0",
		watchKey("t", "v3"):     "-5:100",
		watchKey("t", "v4"):     "",
		"A.dXNlcg":              "1:1", // one base64 character decodes to nothing
		"dGFn":                  "1:1",
		"dGFn.dXNlcg.extra":     "1:1",
		"dGFn.dXNlcg_":          "1:1",  // non-canonical base64 (stray bits)
		watchKey("doomed", "u"): "oops", // overwrites a valid watch
	}
	for k, v := range bad {
		if _, err := kv.Put(bg, k, []byte(v)); err != nil {
			t.Fatalf("Put(%s): %v", k, err)
		}
	}
	eventually(t, "A to skip the forged entries", func() bool { return a.Skipped() == int64(len(bad)) })
	if a.Known("u", "doomed") {
		t.Fatal("a watch overwritten by garbage still counts")
	}
	c := openWatches(t, connect(t, s).js, WatchOptions{})
	if c.Skipped() != int64(len(bad)) {
		t.Fatalf("late node skipped %d, want %d", c.Skipped(), len(bad))
	}
	if got := c.Watchers("good", t0); !slices.Equal(got, []string{"u"}) || len(c.Watchers("t", t0)) != 0 {
		t.Fatalf("late node: good = %v, t = %v", got, c.Watchers("t", t0))
	}
}

// A node whose replica lags (its watcher is stopped here) must not revive
// through Extend a watch another node removed, and must renew one another
// node renewed meanwhile.
func TestWatchesExtendCompareAndSwap(t *testing.T) {
	t.Parallel()
	a, b, _ := twoWatches(t, WatchOptions{})
	if err := a.Add([]string{"u"}, []string{"gone", "kept"}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see the watches", func() bool { return b.Known("u", "gone") && b.Known("u", "kept") })
	b.f.stop() // B's replica is frozen from here on
	if _, err := a.Remove([]string{"u"}, []string{"gone"}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Extend([]string{"u"}, []string{"kept"}, t0.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	had, err := b.Extend([]string{"u"}, []string{"gone", "kept"}, t0.Add(30*time.Second))
	if err != nil || had["gone"] || !had["kept"] {
		t.Fatalf("B.Extend = %v, %v; want gone false, kept true", had, err)
	}
	eventually(t, "A to see B's renewal and no revival", func() bool {
		return !a.Known("u", "gone") && slices.Equal(a.Watchers("kept", t0.Add(89*time.Second)), []string{"u"})
	})
}

// The watcher's late echo of an older write never undoes a newer one made
// by this node, nor revives what this node removed.
func TestWatchesOwnWritesWinOverLateEchoes(t *testing.T) {
	t.Parallel()
	w, _, _ := twoWatches(t, WatchOptions{})
	w.f.stop() // deliver entries by hand only
	if err := w.Add([]string{"u"}, []string{"t"}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	first := w.byTag["t"]["u"]
	if err := w.Add([]string{"u"}, []string{"t"}, 2*time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	w.applyEntry(fakeEntry{key: watchKey("t", "u"), val: encodeWatch(first.watchEntry), rev: first.rev})
	if got := w.Watchers("t", t0.Add(90*time.Second)); !slices.Equal(got, []string{"u"}) {
		t.Fatalf("older echo replaced the newer write: %v", got)
	}
	second := w.byTag["t"]["u"]
	if _, err := w.Remove([]string{"u"}, []string{"t"}); err != nil {
		t.Fatal(err)
	}
	w.applyEntry(fakeEntry{key: watchKey("t", "u"), val: encodeWatch(second.watchEntry), rev: second.rev})
	if w.Known("u", "t") {
		t.Fatal("late echo revived a removed watch")
	}
	// A newer write by another node does come in.
	w.applyEntry(fakeEntry{key: watchKey("t", "u"), val: encodeWatch(first.watchEntry), rev: second.rev + 5})
	if !w.Known("u", "t") {
		t.Fatal("newer write from another node ignored")
	}
	// A delete older than the entry is ignored, a newer one applies.
	w.applyEntry(fakeEntry{key: watchKey("t", "u"), rev: second.rev + 4, op: jetstream.KeyValueDelete})
	if !w.Known("u", "t") {
		t.Fatal("older delete removed a newer watch")
	}
	w.applyEntry(fakeEntry{key: watchKey("t", "u"), rev: second.rev + 6, op: jetstream.KeyValuePurge})
	if w.Known("u", "t") {
		t.Fatal("newer purge ignored")
	}
}

func TestWatchesNATSDown(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	w := openWatches(t, connect(t, s).js, WatchOptions{Timeout: 500 * time.Millisecond})
	if err := w.Add([]string{"u"}, []string{"t"}, time.Minute, t0); err != nil {
		t.Fatal(err)
	}
	s.Shutdown()
	s.WaitForShutdown()
	if err := w.Add([]string{"u"}, []string{"t2"}, time.Minute, t0); err == nil {
		t.Fatal("Add with NATS down succeeded")
	}
	if _, err := w.Remove([]string{"u"}, nil); err == nil {
		t.Fatal("Remove with NATS down succeeded")
	}
	// Reads keep serving the last known replica; Sweep drops locally.
	if got := w.Watchers("t", t0); !slices.Equal(got, []string{"u"}) {
		t.Fatalf("Watchers with NATS down = %v", got)
	}
	w.Sweep(t0.Add(time.Hour))
	if w.Known("u", "t") {
		t.Fatal("Sweep with NATS down kept an old entry")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Add([]string{"u"}, []string{"t"}, time.Minute, t0); !errors.Is(err, ErrClosed) {
		t.Fatalf("Add after Close = %v", err)
	}
}

func TestWatchOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		o     WatchOptions
		field string
	}{
		{WatchOptions{Bucket: "a.b"}, "Bucket"},
		{WatchOptions{Replicas: 7}, "Replicas"},
		{WatchOptions{MaxTTL: -1}, "MaxTTL"},
		{WatchOptions{MaxTTL: time.Millisecond}, "MaxTTL"},
		{WatchOptions{Timeout: -1}, "Timeout"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate(%+v) = %v, want it to name %s", c.o, err, c.field)
		}
	}
	if err := (WatchOptions{}).Validate(); err != nil {
		t.Fatalf("zero options: %v", err)
	}
}
