package hub

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStartWritesFirstThenReplayThenLive(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	m1, _ := h.Publish([]string{"user:1"}, ev("old"))
	tr := newFake()
	c := h.NewConn(tr, Native, ConnInfo{})
	t.Cleanup(func() { c.Close(1000, "") })
	res, err := h.Subscribe(c, []string{"user:1"}, h.Epoch()+"0000000000000000")
	if err != nil || !res.Resumed || res.Replayed != 1 || res.LastID != m1 {
		t.Fatalf("%+v %v", res, err)
	}
	m2, _ := h.Publish([]string{"user:1"}, ev("new")) // before Start: held
	if !c.Send([]byte(`{"type":"pong"}`)) {
		t.Fatal("send refused")
	}
	if n := len(tr.Frames()); n != 0 {
		t.Fatalf("%d frames written before Start", n)
	}
	c.Start([]byte(`{"type":"welcome"}`))
	waitFor(t, "4 objects", func() bool { return tr.Count() >= 4 })
	objs := tr.Objects(t)
	got := []string{objs[0].Type, objs[1].ID, objs[2].ID, objs[3].Type}
	if fmt.Sprint(got) != fmt.Sprint([]string{"welcome", m1, m2, "pong"}) {
		t.Fatalf("order %v", got)
	}
	// Raw frames are never joined with events.
	for _, f := range tr.Frames() {
		if strings.Contains(string(f), "welcome") && strings.Contains(string(f), "\n") {
			t.Fatalf("welcome joined: %q", f)
		}
	}
}

func TestFramesBatchQueuedEvents(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{MaxFrameBytes: 1000})
	tr := newFake()
	c := h.NewConn(tr, Native, ConnInfo{})
	t.Cleanup(func() { c.Close(1000, "") })
	if _, err := h.Subscribe(c, []string{"user:1"}, ""); err != nil {
		t.Fatal(err)
	}
	for range 50 { // queued together before Start
		h.Publish([]string{"user:1"}, ev("x"))
	}
	c.Start(nil)
	waitFor(t, "50 events", func() bool { return tr.Count() == 50 })
	frames := tr.Frames()
	if len(frames) >= 50 || len(frames) < 2 {
		t.Fatalf("%d frames for 50 events", len(frames))
	}
	for _, f := range frames {
		if len(f) > 1000 {
			t.Fatalf("frame of %d bytes > MaxFrameBytes", len(f))
		}
	}
}

func TestSlowConsumerClosedFastOneKeepsReceiving(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{QueueSize: 16})
	slowT := newFake()
	slowT.block = make(chan struct{}) // never released: the peer stopped reading
	slow := h.NewConn(slowT, Native, ConnInfo{User: "slow"})
	if _, err := h.Subscribe(slow, []string{"shared"}, ""); err != nil {
		t.Fatal(err)
	}
	slow.Start(nil)
	fast, fastT := connect(t, h, "shared")
	_ = fast

	const n = 200
	done := make(chan struct{})
	go func() { // the publisher must never block on the slow connection
		defer close(done)
		for i := range n {
			h.Publish([]string{"shared"}, ev(fmt.Sprint(i)))
			if i%10 == 9 { // let the fast writer keep up
				want := i + 1
				if !waitUntil(func() bool { return fastT.Count() >= want }) {
					t.Error("fast conn stalled")
					return
				}
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("publisher blocked")
	}
	select {
	case <-slow.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("slow consumer not closed")
	}
	if code, reason := slow.CloseCode(); code != CloseSlowConsumer || reason != "slow consumer" {
		t.Fatalf("close %d %q", code, reason)
	}
	if closed, code, _ := slowT.Closed(); !closed || code != 4008 {
		t.Fatalf("transport closed=%v code=%d", closed, code)
	}
	waitFor(t, "fast gets all", func() bool { return fastT.Count() == n })
	if h.Connections("shared") != 1 || h.Stats().SlowClosed != 1 {
		t.Fatalf("conns %d stats %+v", h.Connections("shared"), h.Stats())
	}
	if slow.Send([]byte("x")) {
		t.Fatal("Send on a closed conn")
	}
}

// stuckTransport ignores ctx until Close, like a socket stuck in write.
type stuckTransport struct {
	once    sync.Once
	closed  chan struct{}
	entered chan struct{}
}

func (s *stuckTransport) WriteFrame(ctx context.Context, _ []byte) error {
	select {
	case s.entered <- struct{}{}:
	default:
	}
	<-s.closed
	return errors.New("closed")
}
func (s *stuckTransport) Close(int, string) error { s.once.Do(func() { close(s.closed) }); return nil }

func TestCloseUnblocksStuckWrite(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	st := &stuckTransport{closed: make(chan struct{}), entered: make(chan struct{}, 1)}
	c := h.NewConn(st, Native, ConnInfo{})
	c.Start([]byte("hello"))
	<-st.entered
	c.Close(1001, "going away")
	c.Close(1000, "again") // idempotent, keeps the first code
	if code, reason := c.CloseCode(); code != 1001 || reason != "going away" {
		t.Fatalf("%d %q", code, reason)
	}
	if h.Stats().Conns != 0 {
		t.Fatal("still registered")
	}
}

func TestWriteTimeoutClosesConn(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{WriteTimeout: 20 * time.Millisecond})
	tr := newFake()
	tr.block = make(chan struct{})
	c := h.NewConn(tr, Native, ConnInfo{})
	c.Start([]byte("hello"))
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("not closed")
	}
	if code, _ := c.CloseCode(); code != CloseWriteFailed {
		t.Fatalf("code %d", code)
	}
}

func TestCloseAll(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	var conns []*Conn
	for i := range 40 {
		c, _ := connect(t, h, fmt.Sprintf("user:%d", i), "shared")
		conns = append(conns, c)
	}
	idle := h.NewConn(newFake(), Native, ConnInfo{}) // never subscribed
	polled := make(chan error, 1)
	go func() {
		_, err := h.Poll(context.Background(), []string{"user:x"}, "", time.Minute)
		polled <- err
	}()
	waitFor(t, "poll held", func() bool { return h.Stats().Channels == 42 })
	h.CloseAll(1012, "restart")
	for _, c := range append(conns, idle) {
		select {
		case <-c.Done():
		default:
			t.Fatal("conn still open after CloseAll")
		}
		if code, _ := c.CloseCode(); code != 1012 {
			t.Fatalf("code %d", code)
		}
	}
	if err := <-polled; err != nil {
		t.Fatalf("poll: %v", err)
	}
	if st := h.Stats(); st.Conns != 0 || st.Channels != 0 {
		t.Fatalf("stats %+v", st)
	}
}

func TestEncodeErrorSkipsEvent(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	tr := newFake()
	c := h.NewConn(tr, failingFormat{}, ConnInfo{})
	t.Cleanup(func() { c.Close(1000, "") })
	if _, err := h.Subscribe(c, []string{"c"}, ""); err != nil {
		t.Fatal(err)
	}
	c.Start(nil)
	h.Publish([]string{"c"}, ev("bad"))
	h.Publish([]string{"c"}, ev("good"))
	waitFor(t, "good event", func() bool { return tr.Count() == 1 })
	if objs := tr.Objects(t); objs[0].Command != "good" {
		t.Fatalf("%+v", objs)
	}
}

type failingFormat struct{}

func (failingFormat) Name() string                     { return "failing" }
func (failingFormat) Variant(string) string            { return "" }
func (failingFormat) Join(d []byte, i [][]byte) []byte { return Native.Join(d, i) }
func (failingFormat) Encode(e *Event, ch string) ([]byte, error) {
	if e.Command == "bad" {
		return nil, errors.New("cannot")
	}
	return Native.Encode(e, ch)
}
