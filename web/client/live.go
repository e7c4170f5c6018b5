package client

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

// Close codes of the client protocol (API.md).
const (
	CloseUnauthenticated = 4001
	CloseForbidden       = 4003
	CloseTooManyConns    = 4029
	CloseRestart         = 1012
)

// LiveOptions configure the live routes.
type LiveOptions struct {
	// AllowedOrigins are the web origins allowed to open a WebSocket or use
	// CORS: host patterns ("app.example.com", "*.example.com") or with a
	// scheme ("https://app.example.com"). Empty: same host only. "*": any.
	AllowedOrigins []string
	// PingInterval is the server ping period; a peer silent for two is
	// closed. Default 25s.
	PingInterval time.Duration
	// MaxPollWait caps ?wait= of long polls. Default 60s.
	MaxPollWait time.Duration
	// DefaultPollWait is the hold time without ?wait=. Default 40s (Bitrix).
	DefaultPollWait time.Duration
	// PerIP bounds connection attempts and polls per address (default 20/s,
	// bursts of 60).
	PerIP RateLimit
}

func (o *LiveOptions) setDefaults() {
	if o.PingInterval == 0 {
		o.PingInterval = 25 * time.Second
	}
	if o.MaxPollWait == 0 {
		o.MaxPollWait = 60 * time.Second
	}
	if o.DefaultPollWait == 0 {
		o.DefaultPollWait = 40 * time.Second
	}
	if o.PerIP == (RateLimit{}) {
		o.PerIP = RateLimit{Rate: 20, Burst: 60}
	}
}

// liveHandlers serve /sub/ws, /sub/poll, /sub/sse and /sub/watch.
type liveHandlers struct {
	svc    *live.Service
	hub    *hub.Hub
	tokens *token.Issuer
	o      LiveOptions
	sched  *pollSchedules
	sse    hub.Format
	pings  *pingWheel
	// conns counts the WebSocket read loops, which outlive their
	// handlers (see ws).
	conns sync.WaitGroup
}

// RegisterLive adds the live routes to e.
func RegisterLive(e *echo.Echo, svc *live.Service, tokens *token.Issuer, o LiveOptions) {
	o.setDefaults()
	h := &liveHandlers{svc: svc, hub: svc.Hub(), tokens: tokens, o: o, sched: newPollSchedules(), sse: sseFormat{}, pings: newPingWheel(o.PingInterval)}
	ipLim := NewLimiter(o.PerIP, nil)
	userLim := NewLimiter(RateLimit{Rate: 2, Burst: 20}, nil)
	auth := RequireToken(tokens)
	e.GET("/sub/ws", h.ws, LimitBy(ipLim, ByIP), auth)
	e.GET("/sub/poll", h.poll, LimitBy(ipLim, ByIP), auth)
	e.GET("/sub/sse", h.sseHandler, LimitBy(ipLim, ByIP), auth)
	e.POST("/sub/watch", h.watch, LimitBy(ipLim, ByIP), auth, LimitBy(userLim, ByUser))
	e.OPTIONS("/sub/*", func(c echo.Context) error { return c.NoContent(http.StatusNoContent) })
	e.Use(h.cors)
}

// cors answers cross-origin requests from allowed origins. The token is
// sent as a header or query parameter, never a cookie, so credentials mode
// is not needed.
func (h *liveHandlers) cors(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		origin := c.Request().Header.Get("Origin")
		if origin != "" && originAllowed(origin, c.Request().Host, h.o.AllowedOrigins) {
			hd := c.Response().Header()
			hd.Set("Access-Control-Allow-Origin", origin)
			hd.Add("Vary", "Origin")
			hd.Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			hd.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			hd.Set("Access-Control-Max-Age", "600")
		}
		return next(c)
	}
}

func clientKind(cl token.Claims) string {
	if cl.Client == "" {
		return token.ClientWeb
	}
	return cl.Client
}

func channelsOf(user string) []string {
	return []string{live.UserChannel(user), live.SharedChannel}
}

// clientFrame is what a client may send over the WebSocket.
type clientFrame struct {
	Op   string   `json:"op"`
	ID   string   `json:"id"`
	Tags []string `json:"tags"`
}

// ErrBadFrame is returned by ParseClientFrame for frames that are not a
// known operation.
var ErrBadFrame = errors.New("client: bad frame")

// ParseClientFrame decodes one client frame: {"op":"ping"},
// {"op":"ack","id":mid} or {"op":"watch","tags":[...]}.
func ParseClientFrame(b []byte) (op, id string, tags []string, err error) {
	if len(b) > 64<<10 {
		return "", "", nil, ErrBadFrame
	}
	var f clientFrame
	if err := json.Unmarshal(b, &f); err != nil {
		return "", "", nil, ErrBadFrame
	}
	switch f.Op {
	case "ping":
		return f.Op, "", nil, nil
	case "ack":
		if !hub.ValidMID(f.ID) {
			return "", "", nil, ErrBadFrame
		}
		return f.Op, f.ID, nil, nil
	case "watch":
		if len(f.Tags) == 0 || len(f.Tags) > 100 {
			return "", "", nil, ErrBadFrame
		}
		return f.Op, "", f.Tags, nil
	}
	return "", "", nil, ErrBadFrame
}

func errorFrame(code, message string) []byte {
	b, _ := json.Marshal(map[string]string{"type": "error", "code": code, "message": message})
	return b
}

// watch extends tags from a client (POST /sub/watch).
func (h *liveHandlers) watch(c echo.Context) error {
	cl, _ := Claims(c)
	var body struct {
		Tags []string `json:"tags"`
	}
	if err := api.Decode(c, &body); err != nil {
		return err
	}
	if len(body.Tags) == 0 || len(body.Tags) > 100 {
		return apierr.Invalid("tags", "give 1 to 100 tags")
	}
	if err := h.svc.ClientExtend(cl.User, cl.Tags, body.Tags); err != nil {
		if errors.Is(err, live.ErrForbidden) {
			return apierr.New(apierr.CodePermissionDenied, "%v", err)
		}
		var fe *live.FieldError
		if errors.As(err, &fe) {
			return apierr.Invalid(fe.Field, "%s", fe.Message)
		}
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"tags": body.Tags, "ttl": int(h.svc.Options().WatchTTL / time.Second)})
}

// pollSchedules keeps the 60-20-10 state of short pollers: how many polls
// since one returned events, per user and client kind. Entries idle for
// longer than the slowest interval are dropped.
type pollSchedules struct {
	mu sync.Mutex
	m  map[string]*pollState
	n  int
}

type pollState struct {
	quiet int
	seen  time.Time
}

func newPollSchedules() *pollSchedules { return &pollSchedules{m: map[string]*pollState{}} }

// next returns the seconds until the next poll, per 60-20-10: 10 right
// after a poll that returned events, 20 for the next four polls, then 60.
func (p *pollSchedules) next(key string, gotEvents bool, now time.Time) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.n++; p.n%1024 == 0 {
		for k, st := range p.m {
			if now.Sub(st.seen) > 3*time.Minute {
				delete(p.m, k)
			}
		}
	}
	st := p.m[key]
	if st == nil {
		st = &pollState{quiet: 5}
		p.m[key] = st
	}
	st.seen = now
	if gotEvents {
		st.quiet = 0
		return 10
	}
	st.quiet++
	if st.quiet <= 4 {
		return 20
	}
	return 60
}

// poll serves long polling (wait > 0) and short polling (wait = 0).
func (h *liveHandlers) poll(c echo.Context) error {
	cl, _ := Claims(c)
	wait := h.o.DefaultPollWait
	if v := c.QueryParam("wait"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 || time.Duration(n)*time.Second > h.o.MaxPollWait {
			return apierr.Invalid("wait", "must be 0 to %d seconds", int(h.o.MaxPollWait/time.Second))
		}
		wait = time.Duration(n) * time.Second
	}
	since := c.QueryParam("since")
	chans := channelsOf(cl.User)
	kind := clientKind(cl)
	ctx := c.Request().Context()
	now := time.Now()
	h.svc.Polled(cl.User, kind, now.Add(wait+15*time.Second))
	var res hub.PollResult
	var err error
	transport := hub.TransportLongPoll
	if wait == 0 {
		transport = hub.TransportShortPoll
	}
	defer h.hub.Track(hub.ConnInfo{User: cl.User, Client: kind, Transport: transport})()
	if wait == 0 {
		res, err = h.hub.Since(chans, since)
	} else {
		res, err = h.hub.Poll(ctx, chans, since, wait)
	}
	if err != nil && ctx.Err() == nil {
		return &apierr.Error{Code: apierr.CodeUnavailable, Message: "shutting down", Err: err}
	}
	events := make([]json.RawMessage, 0, len(res.Events))
	for i, ev := range res.Events {
		b, err := ev.Encoded(hub.Native, res.Channels[i])
		if err != nil {
			continue
		}
		events = append(events, b)
	}
	next := h.sched.next(cl.User+"\x00"+kind, len(events) > 0, time.Now())
	if wait == 0 {
		h.svc.Polled(cl.User, kind, time.Now().Add(time.Duration(next)*time.Second+10*time.Second))
	} else {
		h.svc.Polled(cl.User, kind, time.Now().Add(15*time.Second))
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.JSON(http.StatusOK, map[string]any{
		"events": events, "last_id": res.LastID, "resumed": res.Resumed, "next_poll_in": next,
	})
}

// tokenTimer closes conn when the token expires.
func tokenTimer(cl token.Claims, close func()) *time.Timer {
	d := time.Until(cl.ExpiresAt)
	if d < 0 {
		d = 0
	}
	return time.AfterFunc(d, close)
}

func welcomeFrame(h *hub.Hub, res hub.Resume, ping time.Duration) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "welcome", "epoch": h.Epoch(), "last_id": res.LastID,
		"resumed": res.Resumed, "ping_interval": int(ping / time.Second),
	})
	return b
}

var resyncFrame = []byte(`{"type":"resync","reason":"history_lost"}`)
