package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeTransport records every frame written. When block is set, WriteFrame
// waits for it (or for ctx) before recording, like a socket whose peer
// stopped reading.
type fakeTransport struct {
	block chan struct{}

	mu      sync.Mutex
	frames  [][]byte
	objs    []wire
	closed  bool
	code    int
	reason  string
	changed chan struct{}
}

func newFake() *fakeTransport { return &fakeTransport{changed: make(chan struct{}, 1)} }

func (t *fakeTransport) WriteFrame(ctx context.Context, frame []byte) error {
	if t.block != nil {
		select {
		case <-t.block:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	var objs []wire
	for _, line := range bytes.Split(frame, []byte{'\n'}) {
		var w wire
		if err := json.Unmarshal(line, &w); err != nil {
			w.Type = "invalid: " + err.Error()
		}
		objs = append(objs, w)
	}
	t.mu.Lock()
	t.frames = append(t.frames, bytes.Clone(frame))
	t.objs = append(t.objs, objs...)
	t.mu.Unlock()
	t.notify()
	return nil
}

func (t *fakeTransport) Close(code int, reason string) error {
	t.mu.Lock()
	if !t.closed {
		t.closed, t.code, t.reason = true, code, reason
	}
	t.mu.Unlock()
	t.notify()
	return nil
}

func (t *fakeTransport) notify() {
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

func (t *fakeTransport) Frames() [][]byte {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([][]byte(nil), t.frames...)
}

// wire is one decoded object of a frame.
type wire struct {
	Type     string          `json:"type"`
	ID       string          `json:"id"`
	Channel  string          `json:"channel"`
	ModuleID string          `json:"module_id"`
	Command  string          `json:"command"`
	Params   json.RawMessage `json:"params"`
	Extra    json.RawMessage `json:"extra"`
}

// Objects returns every object received, frames split on '\n'.
func (t *fakeTransport) Objects(tb testing.TB) []wire {
	tb.Helper()
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, w := range t.objs {
		if strings.HasPrefix(w.Type, "invalid") {
			tb.Fatalf("bad frame: %s", w.Type)
		}
	}
	return append([]wire(nil), t.objs...)
}

// Count returns how many objects were received.
func (t *fakeTransport) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.objs)
}

// IDs returns the ids of the event objects received.
func (t *fakeTransport) IDs(tb testing.TB) []string {
	var ids []string
	for _, w := range t.Objects(tb) {
		if w.Type == "event" {
			ids = append(ids, w.ID)
		}
	}
	return ids
}

func (t *fakeTransport) Closed() (bool, int, string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.closed, t.code, t.reason
}

// waitFor polls cond until it holds or the deadline passes. Test goroutine
// only; other goroutines use waitUntil.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	if !waitUntil(cond) {
		tb.Fatalf("timed out waiting for %s", what)
	}
}

// waitUntil polls cond for up to 10s and reports whether it held.
func waitUntil(cond func() bool) bool {
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(time.Millisecond) // polling interval of a condition with a deadline
	}
	return true
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// testClock is an injectable hub clock.
type testClock struct{ now atomic.Int64 }

func newClock() *testClock {
	c := &testClock{}
	c.now.Store(time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *testClock) Now() time.Time          { return time.Unix(0, c.now.Load()) }
func (c *testClock) Advance(d time.Duration) { c.now.Add(int64(d)) }

func newHub(tb testing.TB, o Options) *Hub {
	tb.Helper()
	if o.Logger == nil {
		o.Logger = quietLogger()
	}
	if o.Epoch == 0 {
		o.Epoch = 1732780000
	}
	h, err := New(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(h.Close)
	return h
}

func ev(cmd string) *Event {
	return &Event{ModuleID: "im", Command: cmd, Params: json.RawMessage(`{"n":1}`), Expiry: time.Hour}
}

// connect returns a started connection subscribed to channels.
func connect(tb testing.TB, h *Hub, channels ...string) (*Conn, *fakeTransport) {
	tb.Helper()
	t := newFake()
	c := h.NewConn(t, Native, ConnInfo{User: "u", Transport: "test"})
	if _, err := h.Subscribe(c, channels, ""); err != nil {
		tb.Fatal(err)
	}
	c.Start(nil)
	tb.Cleanup(func() { c.Close(1000, "test end") })
	return c, t
}

// countingFormat is Native counting Encode calls.
type countingFormat struct{ n atomic.Int64 }

func (f *countingFormat) Name() string                  { return "counting" }
func (f *countingFormat) Variant(channel string) string { return Native.Variant(channel) }
func (f *countingFormat) Encode(e *Event, channel string) ([]byte, error) {
	f.n.Add(1)
	return Native.Encode(e, channel)
}
func (f *countingFormat) Join(dst []byte, items [][]byte) []byte { return Native.Join(dst, items) }
