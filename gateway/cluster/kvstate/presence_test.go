package kvstate

import (
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// fast are presence options for tests on the real clock.
func fast(node string) PresenceOptions {
	// DeadAfter leaves room for a late heartbeat on a loaded machine.
	return PresenceOptions{Node: node, Heartbeat: 100 * time.Millisecond, DeadAfter: time.Second, Timeout: 500 * time.Millisecond}
}

// slow are presence options whose heartbeats never tick during a test:
// nodes count as alive throughout, and only the writes under test happen.
// All nodes of a test share their timing, as a cluster's nodes must.
func slow(node string) PresenceOptions { return PresenceOptions{Node: node, Heartbeat: time.Hour} }

func userKeys(t *testing.T, kv jetstream.KeyValue, node string) []string {
	t.Helper()
	keys, err := kv.Keys(bg)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	var out []string
	for _, k := range keys {
		if strings.HasPrefix(k, userPrefix+node+".") {
			out = append(out, k)
		}
	}
	return out
}

func TestPresenceSharedBetweenNodes(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openPresence(t, connect(t, s).js, fast("a"))
	b := openPresence(t, connect(t, s).js, fast("b"))
	a.SetLocal("anna", true)
	a.SetLocal("odd user.*>", true)
	eventually(t, "B to see anna on A", func() bool { return b.Remote("anna") && b.Remote("odd user.*>") })
	if a.Remote("anna") {
		t.Fatal("a node's own user counted as remote")
	}
	if b.Remote("boris") {
		t.Fatal("unknown user remote")
	}
	if got := b.Nodes(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("B.Nodes = %v", got)
	}
	a.SetLocal("anna", false)
	eventually(t, "B to see anna offline", func() bool { return !b.Remote("anna") })
	if !b.Remote("odd user.*>") {
		t.Fatal("the other user went offline too")
	}
	// Both nodes have the user: each sees the other's.
	b.SetLocal("carl", true)
	a.SetLocal("carl", true)
	eventually(t, "both to see carl on the other", func() bool { return a.Remote("carl") && b.Remote("carl") })
}

// The last state per user wins, however fast the transitions come.
func TestPresenceCoalescesTransitions(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openPresence(t, connect(t, s).js, fast("a"))
	b := openPresence(t, connect(t, s).js, fast("b"))
	want := map[string]bool{}
	for i := range 1000 {
		u := "u" + strconv.Itoa(i%10)
		a.SetLocal(u, i%7 != 0)
		want[u] = i%7 != 0
	}
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	eventually(t, "B to converge", func() bool {
		for u, on := range want {
			if b.Remote(u) != on {
				return false
			}
		}
		return true
	})
	on := 0
	for _, v := range want {
		if v {
			on++
		}
	}
	if on == 0 || on == len(want) {
		t.Fatalf("test sequence leaves %d of %d online: pick another", on, len(want))
	}
	eventually(t, "A's writer to settle", func() bool { return len(userKeys(t, kv, "a")) == on })
}

func TestPresenceCloseGoesOfflineAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	// A long DeadAfter: only Close can make A's users go offline in time.
	a := openPresence(t, connect(t, s).js, slow("a"))
	b := openPresence(t, connect(t, s).js, slow("b"))
	a.SetLocal("anna", true)
	eventually(t, "B to see anna", func() bool { return b.Remote("anna") })
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see A gone", func() bool { return !b.Remote("anna") && slices.Equal(b.Nodes(), []string{"b"}) })
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	if keys := userKeys(t, kv, "a"); len(keys) != 0 {
		t.Fatalf("A's keys left after Close: %v", keys)
	}
	a.SetLocal("anna", true) // ignored after Close, must not panic or block
}

// A node killed without Close (its connection cut) stops counting after
// DeadAfter, and live nodes purge its keys after PurgeAfter.
func TestPresenceKilledNodeDies(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	na := connect(t, s)
	a := openPresence(t, na.js, fast("a"))
	b := openPresence(t, connect(t, s).js, fast("b"))
	a.SetLocal("anna", true)
	eventually(t, "B to see anna", func() bool { return b.Remote("anna") })
	na.nc.Close()
	eventually(t, "B to count A dead", func() bool { return !b.Remote("anna") && slices.Equal(b.Nodes(), []string{"b"}) })
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	eventually(t, "B to purge A's keys", func() bool {
		_, err := kv.Get(bg, heartbeatKey("a"))
		return len(userKeys(t, kv, "a")) == 0 && errors.Is(err, jetstream.ErrKeyNotFound)
	})
	_ = a.Close() // best effort on a dead connection: returns
}

// DeadAfter is measured on the injected clock.
func TestPresenceDeadAfterByClock(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	c := newClock()
	o := PresenceOptions{Heartbeat: time.Hour, DeadAfter: 2 * time.Hour, Now: c.Now}
	oa, ob := o, o
	oa.Node, ob.Node = "a", "b"
	a := openPresence(t, connect(t, s).js, oa)
	b := openPresence(t, connect(t, s).js, ob)
	a.SetLocal("anna", true)
	eventually(t, "B to see anna", func() bool { return b.Remote("anna") })
	c.Advance(2*time.Hour - time.Millisecond)
	if !b.Remote("anna") {
		t.Fatal("A counted dead before DeadAfter")
	}
	c.Advance(time.Millisecond)
	if b.Remote("anna") || !slices.Equal(b.Nodes(), []string{"b"}) {
		t.Fatal("A still counts after DeadAfter without a heartbeat")
	}
}

func TestPresenceRestartClearsStaleKeys(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	na := connect(t, s)
	a := openPresence(t, na.js, slow("a"))
	b := openPresence(t, connect(t, s).js, slow("b"))
	a.SetLocal("anna", true)
	a.SetLocal("boris", true)
	eventually(t, "B to see A's users", func() bool { return b.Remote("anna") && b.Remote("boris") })
	na.nc.Close() // killed: its keys stay behind
	_ = a.Close()
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	if keys := userKeys(t, kv, "a"); len(keys) != 2 {
		t.Fatalf("killed node left %v, want 2 keys", keys)
	}
	a2 := openPresence(t, connect(t, s).js, slow("a"))
	if keys := userKeys(t, kv, "a"); len(keys) != 0 {
		t.Fatalf("restarted node kept stale keys %v", keys)
	}
	eventually(t, "B to see the stale users offline", func() bool { return !b.Remote("anna") && !b.Remote("boris") })
	a2.SetLocal("carl", true)
	eventually(t, "B to see the restarted node's user", func() bool { return b.Remote("carl") })
}

// A node whose keys another node deleted (it was thought dead) writes
// them again.
func TestPresenceRewritesDeletedKeys(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openPresence(t, connect(t, s).js, slow("a"))
	b := openPresence(t, connect(t, s).js, slow("b"))
	a.SetLocal("anna", true)
	eventually(t, "B to see anna", func() bool { return b.Remote("anna") })
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	if err := kv.Purge(bg, userKey("a", "anna")); err != nil {
		t.Fatal(err)
	}
	eventually(t, "A to rewrite its key", func() bool {
		_, err := kv.Get(bg, userKey("a", "anna"))
		return err == nil
	})
	eventually(t, "B to see anna again", func() bool { return b.Remote("anna") })
}

func TestPresenceSetLocalNeverBlocks(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openPresence(t, connect(t, s).js, PresenceOptions{Node: "a", Heartbeat: 50 * time.Millisecond, Timeout: 200 * time.Millisecond})
	a.SetLocal("before", true)
	s.Shutdown()
	s.WaitForShutdown()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 10000 {
			a.SetLocal("u"+strconv.Itoa(i%500), i%2 == 0)
			_ = a.Remote("u1")
		}
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second): // hang detection only
		t.Fatal("SetLocal blocked with NATS down")
	}
	a.pmu.Lock()
	pending := len(a.pending)
	a.pmu.Unlock()
	if pending > 501 {
		t.Fatalf("%d pending transitions for 501 users: not coalesced", pending)
	}
	closed := make(chan struct{})
	go func() { _ = a.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close hung with NATS down")
	}
}

func TestPresenceSkipsUndecodable(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openPresence(t, connect(t, s).js, fast("a"))
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	for k, v := range map[string]string{
		"x.y":            "1",
		"n.bad.dot":      "1",
		"n.z":            "yesterday",
		"u.z":            "1",
		"u.z.A":          "1",
		"u.z.dXNlcg.two": "1",
	} {
		if _, err := kv.Put(bg, k, []byte(v)); err != nil {
			t.Fatalf("Put(%s): %v", k, err)
		}
	}
	eventually(t, "A to skip the forged entries", func() bool { return a.Skipped() == 6 })
	b := openPresence(t, connect(t, s).js, fast("b"))
	if b.Skipped() != 6 {
		t.Fatalf("late node skipped %d, want 6", b.Skipped())
	}
	if got := b.Nodes(); !slices.Equal(got, []string{"a", "b"}) {
		t.Fatalf("Nodes = %v", got)
	}
}

func TestPresenceOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		o     PresenceOptions
		field string
	}{
		{PresenceOptions{}, "Node"},
		{PresenceOptions{Node: "a.b"}, "Node"},
		{PresenceOptions{Node: "a b"}, "Node"},
		{PresenceOptions{Node: "a", Bucket: "x y"}, "Bucket"},
		{PresenceOptions{Node: "a", Replicas: -1}, "Replicas"},
		{PresenceOptions{Node: "a", Heartbeat: -1}, "Heartbeat"},
		{PresenceOptions{Node: "a", Heartbeat: time.Second, DeadAfter: time.Second}, "DeadAfter"},
		{PresenceOptions{Node: "a", DeadAfter: time.Minute, PurgeAfter: time.Second}, "PurgeAfter"},
		{PresenceOptions{Node: "a", Timeout: -1}, "Timeout"},
	} {
		if err := c.o.Validate(); err == nil || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate(%+v) = %v, want it to name %s", c.o, err, c.field)
		}
	}
	if err := (PresenceOptions{Node: "node-1_a"}).Validate(); err != nil {
		t.Fatalf("minimal options: %v", err)
	}
}

// A heartbeat stamped in the future (the writer's clock runs ahead) counts
// from its arrival, not from its stamp.
func TestPresenceHeartbeatFromTheFutureCapped(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	c := newClock()
	ahead := func() time.Time { return c.Now().Add(time.Hour) }
	a := openPresence(t, connect(t, s).js, PresenceOptions{Node: "a", Heartbeat: time.Hour, DeadAfter: 2 * time.Hour, Now: ahead})
	b := openPresence(t, connect(t, s).js, PresenceOptions{Node: "b", Heartbeat: time.Hour, DeadAfter: 2 * time.Hour, Now: c.Now})
	a.SetLocal("anna", true)
	eventually(t, "B to see anna", func() bool { return b.Remote("anna") })
	c.Advance(2 * time.Hour)
	if b.Remote("anna") {
		t.Fatal("a heartbeat from a clock running ahead kept its node alive past DeadAfter")
	}
}

// Transitions made while NATS is down are written once it is back.
func TestPresenceRetriesAfterOutage(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, dir)
	port := s.Addr().(*net.TCPAddr).Port
	o := fast("a")
	o.Timeout = 200 * time.Millisecond
	a := openPresence(t, connectReconnecting(t, s).js, o)
	a.SetLocal("gone", true)
	kv := rawKV(t, connect(t, s).js, DefaultPresenceBucket)
	eventually(t, "A to write gone", func() bool { return len(userKeys(t, kv, "a")) == 1 })
	s.Shutdown()
	s.WaitForShutdown()
	a.SetLocal("anna", true)
	a.SetLocal("gone", false)
	eventually(t, "A's writes to fail", func() bool { return a.failures.Load() >= 1 })
	s2 := startServerAt(t, dir, port)
	b := openPresence(t, connect(t, s2).js, fast("b"))
	eventually(t, "B to see what A queued during the outage", func() bool { return b.Remote("anna") && !b.Remote("gone") })
	// A reconnected: its Close reaches the server again.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eventually(t, "B to see A's users offline after its Close", func() bool { return !b.Remote("anna") })
}

// Deleted presence keys leave markers that expire, so the bucket does not
// keep one per user ever seen.
func TestPresenceMarkersExpire(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	n := connect(t, s)
	a := openPresence(t, n.js, slow("a"))
	a.SetLocal("anna", true)
	a.SetLocal("anna", false)
	kv := rawKV(t, n.js, DefaultPresenceBucket)
	st, err := n.js.Stream(bg, "KV_"+DefaultPresenceBucket)
	if err != nil {
		t.Fatal(err)
	}
	subj := "$KV." + DefaultPresenceBucket + "." + userKey("a", "anna")
	eventually(t, "the marker of anna's key", func() bool {
		_, err := kv.Get(bg, userKey("a", "anna"))
		if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return false
		}
		m, err := st.GetLastMsgForSubject(bg, subj)
		return err == nil && m.Header.Get(jetstream.MsgTTLHeader) != ""
	})
}

// TestPresenceReconcileDropsMissedDeletes: a user whose key is gone from
// the bucket but still in the replica (a delete the watcher never saw)
// stops counting after a reconciliation; users whose keys exist, and one
// written after the listing began, stay.
func TestPresenceReconcileDropsMissedDeletes(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	a := openPresence(t, connect(t, s).js, fast("a"))
	b := openPresence(t, connect(t, s).js, fast("b"))
	a.SetLocal("anna", true)
	eventually(t, "B to see anna", func() bool { return b.Remote("anna") })
	// Forge the missed delete: "ghost" is in B's replica under A with an
	// old revision, and has no key in the bucket.
	b.mu.Lock()
	b.nodes["a"].users["ghost"] = 1
	b.nodes["a"].users["future"] = 1 << 62 // newer than any listing
	b.mu.Unlock()
	if !b.Remote("ghost") {
		t.Fatal("forged user not remote")
	}
	b.reconcile()
	if b.Remote("ghost") {
		t.Fatal("a user without a key survived the reconciliation")
	}
	if !b.Remote("anna") || !b.Remote("future") {
		t.Fatal("the reconciliation dropped a user with a key, or one newer than the listing")
	}
}
