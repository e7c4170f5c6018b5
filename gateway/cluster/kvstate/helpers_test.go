package kvstate

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/gateway/cluster/natstest"
)

var bg = context.Background()

// startServer runs an in-process nats-server with JetStream storing in dir.
func startServer(t testing.TB, dir string) *server.Server { return natstest.Server(t, dir) }

// startServerAt runs the server on port, so that a restarted server is
// found again by reconnecting clients.
func startServerAt(t testing.TB, dir string, port int) *server.Server {
	return natstest.ServerAt(t, dir, port)
}

// node is one pushpull node's connection: closing nc "kills" the node.
type node struct {
	nc *nats.Conn
	js jetstream.JetStream
}

// connectReconnecting is connect with reconnection to a restarted server.
// Nothing is buffered while disconnected, so writes made during an outage
// fail and must be retried by their owner.
func connectReconnecting(t testing.TB, s *server.Server) node {
	t.Helper()
	nc, js := natstest.Connect(t, s, nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectBufSize(-1))
	return node{nc, js}
}

// connect opens a connection of its own, so that two calls give two
// independent nodes.
func connect(t testing.TB, s *server.Server) node {
	t.Helper()
	nc, js := natstest.Connect(t, s, nats.MaxReconnects(0))
	return node{nc, js}
}

func openWatches(t testing.TB, js jetstream.JetStream, o WatchOptions) *Watches {
	t.Helper()
	w, err := OpenWatches(bg, js, o)
	if err != nil {
		t.Fatalf("OpenWatches: %v", err)
	}
	t.Cleanup(func() { _ = w.Close() })
	return w
}

func openPresence(t testing.TB, js jetstream.JetStream, o PresenceOptions) *Presence {
	t.Helper()
	p, err := OpenPresence(bg, js, o)
	if err != nil {
		t.Fatalf("OpenPresence(%s): %v", o.Node, err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// rawKV is a bucket handle of the test's own, for reading and forging
// entries behind the package's back.
func rawKV(t testing.TB, js jetstream.JetStream, bucket string) jetstream.KeyValue {
	t.Helper()
	kv, err := js.KeyValue(bg, bucket)
	if err != nil {
		t.Fatalf("KeyValue(%s): %v", bucket, err)
	}
	return kv
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// clock is a settable clock, safe for the package's goroutines to read.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// fakeEntry is a watcher entry built by hand, to feed applyEntry what a
// late or forged delivery would carry.
type fakeEntry struct {
	key string
	val []byte
	rev uint64
	op  jetstream.KeyValueOp
}

func (e fakeEntry) Bucket() string                  { return "test" }
func (e fakeEntry) Key() string                     { return e.key }
func (e fakeEntry) Value() []byte                   { return e.val }
func (e fakeEntry) Revision() uint64                { return e.rev }
func (e fakeEntry) Created() time.Time              { return time.Time{} }
func (e fakeEntry) Delta() uint64                   { return 0 }
func (e fakeEntry) Operation() jetstream.KeyValueOp { return e.op }
