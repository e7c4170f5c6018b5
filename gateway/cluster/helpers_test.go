package cluster

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/gateway/cluster/natstest"
	"github.com/pushpull/pushpull/gateway/hub"
)

var bg = context.Background()

// natsServer runs an in-process nats-server with JetStream in dir.
func natsServer(t testing.TB, dir string) *server.Server { return natstest.Server(t, dir) }

// jsOn opens a connection of its own (one per simulated node).
func jsOn(t testing.TB, s *server.Server) (*nats.Conn, jetstream.JetStream) {
	return natstest.Connect(t, s)
}

// node is one simulated pushpull node: a hub fed by a bus.
type node struct {
	hub *hub.Hub
	bus *Bus
}

func startNode(t testing.TB, s *server.Server, o Options, ho hub.Options) *node {
	t.Helper()
	_, js := jsOn(t, s)
	b, err := Prepare(bg, js, o)
	if err != nil {
		t.Fatal(err)
	}
	ho.Epoch = b.Epoch()
	h, err := hub.New(ho)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	if err := b.Start(bg, h); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return &node{hub: h, bus: b}
}

// sink is a hub transport that records the ids and commands it gets.
type sink struct {
	frames chan []byte
}

func newSink() *sink { return &sink{frames: make(chan []byte, 1024)} }

func (s *sink) WriteFrame(_ context.Context, frame []byte) error {
	s.frames <- append([]byte(nil), frame...)
	return nil
}
func (s *sink) Close(int, string) error { return nil }

func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

type wire struct {
	Type    string          `json:"type"`
	ID      string          `json:"id"`
	Command string          `json:"command"`
	Params  json.RawMessage `json:"params"`
}

// next returns the next event object received, splitting batched frames.
func (s *sink) events(t testing.TB, n int) []wire {
	t.Helper()
	var out []wire
	deadline := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case f := <-s.frames:
			for _, line := range bytes.Split(f, []byte{'\n'}) {
				var w wire
				if err := json.Unmarshal(line, &w); err != nil {
					t.Fatalf("frame %q: %v", line, err)
				}
				out = append(out, w)
			}
		case <-deadline:
			t.Fatalf("got %d of %d events: %+v", len(out), n, out)
		}
	}
	return out
}

// subscribe connects a sink to channels of n's hub, resuming from since.
func (n *node) subscribe(t testing.TB, since string, channels ...string) (*sink, hub.Resume) {
	t.Helper()
	s := newSink()
	c := n.hub.NewConn(s, hub.Native, hub.ConnInfo{})
	res, err := n.hub.Subscribe(c, channels, since)
	if err != nil {
		t.Fatal(err)
	}
	c.Start(nil)
	t.Cleanup(func() { c.Close(1000, "") })
	return s, res
}

func event(cmd string) *hub.Event {
	return &hub.Event{ModuleID: "im", Command: cmd, Params: json.RawMessage(`{"n":"` + cmd + `"}`), Expiry: time.Hour}
}
