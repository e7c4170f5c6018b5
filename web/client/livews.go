package client

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
)

// originAllowed applies the same rule as the WebSocket handshake: the
// request's own host, or a pattern of allowed.
func originAllowed(origin, host string, allowed []string) bool {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" {
		return false
	}
	if strings.EqualFold(u.Host, host) {
		return true
	}
	for _, p := range allowed {
		target := u.Host
		if strings.Contains(p, "://") {
			target = u.Scheme + "://" + u.Host
		}
		if ok, _ := path.Match(strings.ToLower(p), strings.ToLower(target)); ok {
			return true
		}
	}
	return false
}

// wsTransport adapts a coder/websocket connection to hub.Transport.
type wsTransport struct {
	c    *websocket.Conn
	once sync.Once
}

func (t *wsTransport) WriteFrame(ctx context.Context, frame []byte) error {
	// coder/websocket drops the TCP connection as soon as a write's context
	// is cancelled. The hub cancels the write in flight when it closes a
	// connection, which would race the close frame (4001, 4008, 1012...)
	// off the wire. So a cancel only ends the write if it is still stuck
	// after closeGrace (a slow or dead peer); the deadline applies as is.
	// Ending a write means dropping the connection (what coder/websocket
	// does on a cancelled context), done here directly: the write itself
	// gets no context, which saves two derived contexts and a second
	// cancellation hook per frame on the fan-out path.
	var done atomic.Bool
	drop := func() {
		if !done.Load() {
			t.c.CloseNow()
		}
	}
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			drop()
			return
		}
		time.AfterFunc(closeGrace, drop)
	})
	err := t.c.Write(context.Background(), websocket.MessageText, frame)
	done.Store(true)
	stop()
	return err
}

// closeGrace is how long a write in flight may finish after the hub closed
// the connection, so that the close frame can follow it.
const closeGrace = time.Second

// Close starts the closing handshake without waiting for the peer: the
// hub must never block on a client.
func (t *wsTransport) Close(code int, reason string) error {
	t.once.Do(func() {
		go t.c.Close(websocket.StatusCode(code), reason)
	})
	return nil
}

// ws serves the native WebSocket protocol (API.md).
func (h *liveHandlers) ws(c echo.Context) error {
	cl, _ := Claims(c)
	kind := clientKind(cl)
	conn, err := websocket.Accept(smallReadHijacker{c.Response()}, c.Request(), &websocket.AcceptOptions{
		OriginPatterns:  h.o.AllowedOrigins,
		CompressionMode: websocket.CompressionDisabled,
	})
	if err != nil {
		return nil // Accept has answered
	}
	conn.SetReadLimit(64 << 10)
	if !h.svc.Admit(cl.User, kind) {
		conn.Close(CloseTooManyConns, "too many connections")
		return nil
	}
	t := &wsTransport{c: conn}
	hc := h.hub.NewConn(t, hub.Native, hub.ConnInfo{User: cl.User, Client: kind, Transport: "websocket"})
	since := c.QueryParam("since")
	res, err := h.hub.Subscribe(hc, channelsOf(cl.User), since)
	if err != nil {
		h.svc.Release(cl.User, kind)
		hc.Close(CloseRestart, "server shutting down")
		return nil
	}
	hc.Start(welcomeFrame(h.hub, res, h.o.PingInterval))
	if since != "" && !res.Resumed {
		hc.Send(resyncFrame)
	}
	exp := tokenTimer(cl, func() { hc.Close(CloseUnauthenticated, "token expired") })
	// The connection is read from a goroutine of its own and the handler
	// returns: net/http's goroutine for the request (its stack grown deep
	// by the middleware chain), the request and the echo context are then
	// freed, which is most of an idle connection's memory. The hijacked
	// connection is ours either way; net/http never waited for it.
	h.conns.Add(1)
	go func() {
		defer h.conns.Done()
		defer h.svc.Release(cl.User, kind)
		defer exp.Stop()
		// Outside net/http's and echo's recovery: a bug in one
		// connection's handling must not take the process down.
		defer func() {
			if r := recover(); r != nil {
				slog.Error("websocket read loop panicked; connection closed", "user", cl.User, "panic", r)
				hc.Close(int(websocket.StatusInternalError), "internal error")
			}
		}()
		h.readLoop(conn, hc, cl.User, cl.Tags)
	}()
	return nil
}

// readLoop reads client frames until the connection ends, then waits until
// the hub has finished with it.
func (h *liveHandlers) readLoop(conn *websocket.Conn, hc *hub.Conn, user string, tokenTags []string) {
	// Pings come from one shared wheel, not a goroutine per connection.
	peer := h.pings.add(conn)
	defer h.pings.remove(peer)
	// When the hub closes the connection, the transport's Close runs the
	// close handshake, which ends the read below; cancelling the read
	// instead would drop the TCP connection before the close frame.
	bad := 0
	for {
		// No cancellable context: the close handshake or a failed ping
		// ends the read, and a context would cost a registration per read.
		typ, b, err := conn.Read(context.Background())
		if err != nil {
			if code, _ := hc.CloseCode(); code == 0 {
				code := int(websocket.CloseStatus(err))
				if code <= 0 {
					code = int(websocket.StatusGoingAway)
				}
				hc.Close(code, "client closed")
			}
			break
		}
		if typ != websocket.MessageText {
			bad++
		} else if err := h.handleOp(hc, user, tokenTags, b); err != nil {
			bad++
		}
		if bad > 10 {
			hc.Close(int(websocket.StatusPolicyViolation), "too many bad frames")
			break
		}
	}
	<-hc.Done()
}

func (h *liveHandlers) handleOp(hc *hub.Conn, user string, tokenTags []string, b []byte) error {
	op, id, tags, err := ParseClientFrame(b)
	if err != nil {
		hc.Send(errorFrame("invalid_argument", "unknown or malformed frame"))
		return err
	}
	switch op {
	case "ping":
		hc.Send([]byte(`{"type":"pong"}`))
	case "ack":
		h.svc.Ack(user, id)
	case "watch":
		if err := h.svc.ClientExtend(user, tokenTags, tags); err != nil {
			code := "invalid_argument"
			if errors.Is(err, live.ErrForbidden) {
				code = "permission_denied"
			}
			hc.Send(errorFrame(code, err.Error()))
			return nil
		}
	}
	return nil
}
