package kvregistry

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/cluster/natstest"
)

var bg = context.Background()

// startServer runs an in-process nats-server with JetStream storing in dir.
func startServer(t testing.TB, dir string) *server.Server { return natstest.Server(t, dir) }

// connect returns a JetStream context on its own connection, so that two
// calls give two independent "nodes".
func connect(t testing.TB, s *server.Server) jetstream.JetStream {
	_, js := natstest.Connect(t, s, nats.MaxReconnects(0))
	return js
}

func openRegistry(t *testing.T, js jetstream.JetStream, opts Options) *Registry {
	t.Helper()
	r, err := Open(bg, js, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = r.Close() })
	return r
}

// newRegistry starts a server and opens one registry on it, with a fixed
// clock that tests can move.
func newRegistry(t *testing.T) (*Registry, *clock) {
	t.Helper()
	s := startServer(t, t.TempDir())
	c := &clock{now: time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)}
	return openRegistry(t, connect(t, s), Options{Now: c.Now}), c
}

// clock is a test clock; tests that move it do not run it concurrently.
type clock struct{ now time.Time }

func (c *clock) Now() time.Time          { return c.now }
func (c *clock) Advance(d time.Duration) { c.now = c.now.Add(d) }

func register(t *testing.T, r *Registry, d devices.Device) devices.Registration {
	t.Helper()
	reg, err := r.Register(bg, d)
	if err != nil {
		t.Fatalf("Register(%+v): %v", d, err)
	}
	return reg
}

// apnsToken returns a distinct valid APNs token.
func apnsToken(n int) string {
	s := strconv.Itoa(n)
	return strings.Repeat("0", 64-len(s)) + s
}

func ids(ds []devices.Device) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}
