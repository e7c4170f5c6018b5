package client

import (
	"context"
	"errors"
	"net/url"
	"path"
	"strings"
	"sync"
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
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			cancel()
			return
		}
		time.AfterFunc(closeGrace, cancel)
	})
	defer stop()
	return t.c.Write(wctx, websocket.MessageText, frame)
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
	conn, err := websocket.Accept(c.Response(), c.Request(), &websocket.AcceptOptions{
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
	defer h.svc.Release(cl.User, kind)

	t := &wsTransport{c: conn}
	hc := h.hub.NewConn(t, hub.Native, hub.ConnInfo{User: cl.User, Client: kind, Transport: "websocket"})
	since := c.QueryParam("since")
	res, err := h.hub.Subscribe(hc, channelsOf(cl.User), since)
	if err != nil {
		hc.Close(CloseRestart, "server shutting down")
		return nil
	}
	hc.Start(welcomeFrame(h.hub, res, h.o.PingInterval))
	if since != "" && !res.Resumed {
		hc.Send(resyncFrame)
	}
	exp := tokenTimer(cl, func() { hc.Close(CloseUnauthenticated, "token expired") })
	defer exp.Stop()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go h.pinger(ctx, conn, hc)
	// When the hub closes the connection, the transport's Close runs the
	// close handshake, which ends the read below; cancelling the read
	// instead would drop the TCP connection before the close frame.
	bad := 0
	for {
		typ, b, err := conn.Read(ctx)
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
		} else if err := h.handleOp(hc, cl.User, cl.Tags, b); err != nil {
			bad++
		}
		if bad > 10 {
			hc.Close(int(websocket.StatusPolicyViolation), "too many bad frames")
			break
		}
	}
	<-hc.Done()
	return nil
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

// pinger sends WebSocket pings; a peer that does not answer within two
// intervals is closed.
func (h *liveHandlers) pinger(ctx context.Context, conn *websocket.Conn, hc *hub.Conn) {
	t := time.NewTicker(h.o.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			pctx, cancel := context.WithTimeout(ctx, 2*h.o.PingInterval)
			err := conn.Ping(pctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				// The peer is gone: no close handshake to wait for. The
				// read loop sees the error and closes the hub connection.
				conn.CloseNow()
				return
			}
		}
	}
}
