package client

import (
	"bytes"
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
)

// The wheel's goroutine exists only while connections are registered: the
// first add starts it and the last remove stops it and waits for it.
func TestPingWheelGoroutineFollowsConnections(t *testing.T) {
	t.Parallel()
	w := newPingWheel(time.Hour) // no tick during the test: conns stay nil
	a := w.add(nil)
	done := w.done
	if done == nil {
		t.Fatal("no loop after the first add")
	}
	b := w.add(nil)
	if w.done != done {
		t.Fatal("a second loop was started")
	}
	w.remove(a)
	select {
	case <-done:
		t.Fatal("loop stopped while a connection remains")
	default:
	}
	w.remove(b)
	select {
	case <-done: // remove waited for it
	default:
		t.Fatal("loop still running after the last remove returned")
	}
	if w.n != 0 || w.stop != nil {
		t.Fatalf("wheel not reset: n=%d", w.n)
	}
	for i, s := range w.slots {
		if len(s) != 0 {
			t.Fatalf("slot %d keeps %d peers", i, len(s))
		}
	}
}

// A new connection is placed so that its first ping comes about one
// interval later: in the slot the loop visits last.
func TestPingWheelFirstPingAfterAnInterval(t *testing.T) {
	t.Parallel()
	w := newPingWheel(time.Hour)
	w.cur = 5
	p := w.add(nil)
	defer w.remove(p)
	if p.slot != 4 {
		t.Fatalf("slot %d, want 4 (visited last in the round starting at 5)", p.slot)
	}
}

// A client may send its first frame in the same packet as the upgrade
// request. Those bytes are buffered by net/http before the hijack; the
// small read buffer must not lose them: the ping sent with the request is
// answered.
func TestFrameSentWithUpgradeRequestIsRead(t *testing.T) {
	t.Parallel()
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	u, err := url.Parse(e.url)
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	payload := []byte(`{"op":"ping"}`)
	mask := [4]byte{1, 2, 3, 4}
	frame := []byte{0x81, 0x80 | byte(len(payload)), mask[0], mask[1], mask[2], mask[3]}
	for i, b := range payload {
		frame = append(frame, b^mask[i%4])
	}
	req := "GET /sub/ws?token=" + e.token("olga") + " HTTP/1.1\r\nHost: " + u.Host +
		"\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
	if _, err := c.Write(append([]byte(req), frame...)); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var got []byte
	buf := make([]byte, 4096)
	for !bytes.Contains(got, []byte(`"pong"`)) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			t.Fatalf("no pong for the frame sent with the request: %v; got %q", err, got)
		}
	}
}
