package client

import (
	"context"
	"math/rand/v2"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/web/apierr"
)

// sseFormat renders events as Server-Sent Events: "id: <mid>" and one
// "data:" line with the native JSON object.
type sseFormat struct{}

func (sseFormat) Name() string                  { return "sse" }
func (sseFormat) Variant(channel string) string { return hub.Native.Variant(channel) }

func (sseFormat) Encode(ev *hub.Event, channel string) ([]byte, error) {
	b, err := ev.Encoded(hub.Native, channel)
	if err != nil {
		return nil, err
	}
	out := make([]byte, 0, len(b)+len(ev.ID)+16)
	out = append(out, "id: "...)
	out = append(out, ev.ID...)
	out = append(out, "\ndata: "...)
	out = append(out, b...)
	return append(out, "\n\n"...), nil
}

func (sseFormat) Join(dst []byte, items [][]byte) []byte {
	for _, it := range items {
		dst = append(dst, it...)
	}
	return dst
}

// sseTransport writes frames to a streaming HTTP response. Close has
// nothing to do: the handler returns (ending the response) once the hub
// connection is done.
type sseTransport struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (t *sseTransport) WriteFrame(ctx context.Context, frame []byte) error {
	_ = t.rc.SetWriteDeadline(time.Now().Add(10 * time.Second))
	if _, err := t.w.Write(frame); err != nil {
		return err
	}
	return t.rc.Flush()
}

func (t *sseTransport) Close(code int, reason string) error { return nil }

// sseHandler serves GET /sub/sse. EventSource resumes by itself with the
// Last-Event-ID header.
func (h *liveHandlers) sseHandler(c echo.Context) error {
	cl, _ := Claims(c)
	kind := clientKind(cl)
	if !h.svc.Admit(cl.User, kind) {
		return apierr.New(apierr.CodeRateLimited, "too many connections for this user")
	}
	defer h.svc.Release(cl.User, kind)
	since := c.Request().Header.Get("Last-Event-ID")
	if since == "" {
		since = c.QueryParam("since")
	}
	w := c.Response()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	t := &sseTransport{w: w, rc: http.NewResponseController(w)}
	hc := h.hub.NewConn(t, h.sse, hub.ConnInfo{User: cl.User, Client: kind, Transport: "sse"})
	res, err := h.hub.Subscribe(hc, channelsOf(cl.User), since)
	if err != nil {
		hc.Close(CloseRestart, "server shutting down")
		return nil
	}
	// A reconnect delay of 2–5 s, different per stream, so that the
	// browsers of a restarted server do not all come back at once.
	retry := 2000 + rand.IntN(3001)
	first := append([]byte("retry: "+strconv.Itoa(retry)+"\nevent: welcome\ndata: "), welcomeFrame(h.hub, res, h.o.PingInterval)...)
	hc.Start(append(first, "\n\n"...))
	if since != "" && !res.Resumed {
		hc.Send([]byte("event: resync\ndata: {\"type\":\"resync\",\"reason\":\"history_lost\"}\n\n"))
	}
	exp := tokenTimer(cl, func() { hc.Close(CloseUnauthenticated, "token expired") })
	defer exp.Stop()
	ping := time.NewTicker(h.o.PingInterval)
	defer ping.Stop()
	ctx := c.Request().Context()
	for {
		select {
		case <-ctx.Done():
			hc.Close(1001, "client gone")
			<-hc.Done()
			return nil
		case <-hc.Done():
			return nil
		case <-ping.C:
			hc.Send([]byte(": ping\n\n"))
		}
	}
}
