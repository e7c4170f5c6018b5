package client

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
)

// These tests check that a close decided by the server reaches the client
// as a close frame with its code. coder/websocket drops the TCP connection
// when a read or write context is cancelled, so a close that cancels the
// read loop or the write in flight first loses the code (the client sees
// an abnormal closure) — intermittently, hence several connections each.

// dialRaw opens a WebSocket with tok and reads the welcome frame.
func (e *liveEnv) dialRaw(tok string) *websocket.Conn {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/sub/ws?token="+tok, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.CloseNow() })
	if _, b, err := c.Read(ctx); err != nil || !strings.Contains(string(b), `"welcome"`) {
		e.t.Fatalf("welcome: %q %v", b, err)
	}
	return c
}

// closeStatus reads until c ends and returns the close code it got (-1 when
// the connection ended without a close frame).
func closeStatus(t *testing.T, c *websocket.Conn) websocket.StatusCode {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, _, err := c.Read(ctx); err != nil {
			if ctx.Err() != nil {
				t.Error("connection not closed within 10s")
			}
			return websocket.CloseStatus(err)
		}
	}
}

// closeStatuses collects the close code of every connection concurrently.
func closeStatuses(t *testing.T, conns []*websocket.Conn) []websocket.StatusCode {
	codes := make([]websocket.StatusCode, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); codes[i] = closeStatus(t, c) }()
	}
	wg.Wait()
	return codes
}

func TestTokenExpiryClosesWith4001(t *testing.T) {
	t.Parallel()
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	var conns []*websocket.Conn
	for range 10 {
		// Mint truncates to the second: these expire within a second.
		tok, _, err := e.tokens.Mint("ivy", time.Second, nil, "")
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, e.dialRaw(tok))
	}
	for i, code := range closeStatuses(t, conns) {
		if code != CloseUnauthenticated {
			t.Errorf("connection %d closed with %d, want %d", i, code, CloseUnauthenticated)
		}
	}
}

func TestShutdownClosesWith1012(t *testing.T) {
	t.Parallel()
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	var conns []*websocket.Conn
	for range 10 {
		conns = append(conns, e.dialRaw(e.token("jack")))
	}
	done := make(chan struct{})
	go func() { defer close(done); e.hub.CloseAll(CloseRestart, "server restart") }()
	for i, code := range closeStatuses(t, conns) {
		if code != CloseRestart {
			t.Errorf("connection %d closed with %d, want %d", i, code, CloseRestart)
		}
	}
	<-done
}

func TestRepeatedBadFramesCloseWithPolicyViolation(t *testing.T) {
	t.Parallel()
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	c := e.dialRaw(e.token("kim"))
	ctx := t.Context()
	for range 20 {
		// Errors are expected once the server has closed.
		_ = c.Write(ctx, websocket.MessageText, []byte("not json"))
	}
	if code := closeStatus(t, c); code != websocket.StatusPolicyViolation {
		t.Fatalf("closed with %d, want %d", code, websocket.StatusPolicyViolation)
	}
}

// A peer that answers no ping is dropped at once (no close handshake to
// wait for) and stops counting as online.
func TestSilentPeerIsDropped(t *testing.T) {
	t.Parallel()
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	// Not reading: the client library answers pings only while reading.
	e.dialRaw(e.token("lea"))
	if !e.svc.IsOnline("lea") {
		t.Fatal("not online after connecting")
	}
	// PingInterval is 1s in newLiveEnv: dead after at most 3s.
	deadline := time.Now().Add(10 * time.Second)
	for e.svc.IsOnline("lea") {
		if time.Now().After(deadline) {
			t.Fatal("silent peer still online after 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling a condition, bounded
	}
}
