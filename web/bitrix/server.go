package bitrix

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
)

// Deps is what the Bitrix routes need from the rest of pushpull.
type Deps struct {
	// Hub delivers and stores every Bitrix message. Required.
	Hub *hub.Hub
	// ConfigMiddleware guards GET /api/v1/bitrix/config on the publisher
	// listener (give it the API key check).
	ConfigMiddleware []echo.MiddlewareFunc
	// Bus, in a cluster, carries published messages to every node's hub
	// (gateway/cluster.Bus, configured with MetaCodec). nil: straight to
	// Hub.
	Bus Bus
}

// Bus is live.Bus as the Bitrix routes use it.
type Bus interface {
	Publish(ctx context.Context, channels []string, ev *hub.Event) (string, error)
}

// Server serves the Bitrix protocols. Create it with New (or Register).
// All methods are safe for concurrent use.
type Server struct {
	hub    *hub.Hub
	bus    Bus // nil: one node
	o      Options
	signer *Signer
	rpc    rpcFormat
	log    *slog.Logger
	start  time.Time

	// restart is cancelled by AnnounceRestart: held polls answer with
	// server_restart and new sessions are refused.
	restart       context.Context
	cancelRestart context.CancelFunc

	mu       sync.Mutex
	sessions map[*session]struct{}
	limited  map[string][]*session // hub channel → its sessions, oldest first
	presence presence
	stats    counters
}

// counters are the daily-style statistics of /server-stat/.
type counters struct {
	requests map[string]int
	messages map[string]int
}

// New returns a Server for h configured by o.
func New(h *hub.Hub, o Options) (*Server, error) {
	if h == nil {
		return nil, fmt.Errorf("%w: Deps.Hub is required", ErrInvalidOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	signer, err := NewSigner(o.SignatureKey, o.SignatureAlgo)
	if err != nil {
		return nil, err
	}
	s := &Server{
		hub: h, o: o, signer: signer, rpc: rpcFormat{s: signer},
		log: o.Logger.With("component", "bitrix"), start: o.Now(),
		sessions: make(map[*session]struct{}),
		limited:  make(map[string][]*session),
		presence: newPresence(),
		stats:    counters{requests: map[string]int{}, messages: map[string]int{}},
	}
	s.restart, s.cancelRestart = context.WithCancel(context.Background())
	return s, nil
}

// Register builds a Server and adds its routes: the publisher routes
// (POST/GET /bitrix/pub/, POST /bitrix/api/, GET /server-stat/, GET
// /api/v1/bitrix/config) to pub, the subscriber routes (/bitrix/sub/,
// /bitrix/subws/, /bitrix/pubweb/, /bitrix/rest/) to sub.
func Register(pub, sub *echo.Echo, deps Deps, o Options) (*Server, error) {
	s, err := New(deps.Hub, o)
	if err != nil {
		return nil, err
	}
	s.bus = deps.Bus
	s.RegisterPublisher(pub, deps.ConfigMiddleware...)
	s.RegisterSubscriber(sub)
	return s, nil
}

// RegisterPublisher adds the trusted routes (PHP → server) to e; mw guards
// the config endpoint only (the Bitrix routes are unauthenticated, as in
// the reference servers: keep this listener private).
func (s *Server) RegisterPublisher(e *echo.Echo, mw ...echo.MiddlewareFunc) {
	e.POST("/bitrix/pub/", s.publish)
	e.GET("/bitrix/pub/", s.channelStatsText)
	e.POST("/bitrix/api/", s.jsonRPC)
	e.GET("/server-stat/", s.serverStat)
	e.GET("/bitrix/server-stat/", s.serverStat)
	e.GET("/api/v1/bitrix/config", s.config, mw...)
}

// RegisterSubscriber adds the client routes to e.
func (s *Server) RegisterSubscriber(e *echo.Echo) {
	for _, p := range []string{"/bitrix/sub/", "/bitrix/subws/"} {
		e.GET(p, s.subscribe)
		e.OPTIONS(p, s.options)
	}
	for _, p := range []string{"/bitrix/pubweb/", "/bitrix/rest/"} {
		e.POST(p, s.publishWeb)
		e.OPTIONS(p, s.options)
	}
}

// Signer returns the signer built from Options.SignatureKey.
func (s *Server) Signer() *Signer { return s.signer }

// AnnounceRestart broadcasts pull/server_restart to every Bitrix WebSocket
// and held long poll, and waits until each WebSocket has written it or ctx
// ends. Call it on graceful shutdown before hub.CloseAll: clients then
// reconnect after 15 s with code 3002 instead of at once. Later sessions
// are refused (503). Idempotent.
func (s *Server) AnnounceRestart(ctx context.Context) {
	if s.restart.Err() != nil {
		return
	}
	s.cancelRestart()
	s.mu.Lock()
	var waits []<-chan struct{}
	for ss := range s.sessions {
		if ss.ws == nil {
			continue
		}
		frame := s.restartFrame(ss.format)
		ss.ws.markNext(frame)
		if ss.conn.Send(frame) {
			waits = append(waits, ss.ws.marked)
		}
	}
	s.mu.Unlock()
	for _, w := range waits {
		select {
		case <-w:
		case <-ctx.Done():
			return
		}
	}
}

// restartFrame renders server_restart in f. Its mid is unique but outside
// the hub's sequence (counter 9 then 15 digits of milliseconds): clients drop
// messages whose mid they saw, and a later resume with it is treated as
// absent.
func (s *Server) restartFrame(f hub.Format) []byte {
	now := s.o.Now()
	mid := s.hub.Epoch() + fmt.Sprintf("9%015d", now.UnixMilli()%1e15)
	body := []byte(`{"module_id":"pull","command":"server_restart","params":{},"extra":{}}`)
	switch f.(type) {
	case protoFormat:
		return AppendOutgoing(nil, outgoing(mid, now, 0, body, nil))
	case rpcFormat:
		return appendRPCMessage(nil, mid, body, nil, nil)
	}
	return appendTextFrame(nil, mid, now, body)
}

// session is one WebSocket or long poll.
type session struct {
	conn     *hub.Conn // nil for a poll
	ws       *wsTransport
	format   hub.Format
	channels []string     // hub channels
	limited  []string     // private channels with a public id (MaxConnsPerChannel)
	publicID []byte       // the connection's own public id, for client publish
	user     string       // JWT subject (v5)
	lastRead atomic.Int64 // unix nanoseconds of the last client frame (v5 liveness)
}

var errRestarting = errors.New("bitrix: server restarting")

// attach registers ss; beyond MaxConnsPerChannel on one of its limited
// channels the oldest session there is closed with 4029.
func (s *Server) attach(ss *session) error {
	s.mu.Lock()
	if s.restart.Err() != nil {
		s.mu.Unlock()
		return errRestarting
	}
	s.sessions[ss] = struct{}{}
	s.presence.connect(ss.channels)
	var evict []*session
	for _, ch := range ss.limited {
		list := append(s.limited[ch], ss)
		for len(list) > s.o.MaxConnsPerChannel {
			if list[0].conn != nil {
				evict = append(evict, list[0])
			}
			list = list[1:]
		}
		s.limited[ch] = list
	}
	s.mu.Unlock()
	for _, old := range evict {
		go old.conn.Close(int(CodeTooManyConns), CodeTooManyConns.Reason())
	}
	return nil
}

// detach unregisters ss and records when its channels were last seen.
func (s *Server) detach(ss *session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[ss]; !ok {
		return
	}
	delete(s.sessions, ss)
	s.presence.disconnect(ss.channels, s.o.Now())
	for _, ch := range ss.limited {
		list := s.limited[ch]
		for i, x := range list {
			if x == ss {
				list = append(list[:i:i], list[i+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.limited, ch)
		} else {
			s.limited[ch] = list
		}
	}
}

// online reports how many sessions a hub channel has, counting 1 for a
// channel seen within OnlineTTL.
func (s *Server) online(ch string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, ago, ok := s.presence.lastSeen(ch, s.o.Now())
	if n > 0 {
		return n
	}
	if ok && ago < s.o.OnlineTTL {
		return 1
	}
	return 0
}

func (s *Server) count(kind, name string) {
	s.mu.Lock()
	if kind == "request" {
		s.stats.requests[name]++
	} else {
		s.stats.messages[name]++
	}
	s.mu.Unlock()
}

// publishEvent stores and fans out ev, logging nothing on the hot path.
func (s *Server) publishEvent(channels []string, ev *hub.Event, kind string) {
	if len(channels) == 0 {
		return
	}
	if kind == "" {
		kind = "message"
	}
	if s.bus != nil {
		// The message was acknowledged already (as the reference servers
		// do): a cluster that cannot take it is logged and counted.
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := s.bus.Publish(ctx, channels, ev)
		cancel()
		if err != nil {
			s.count("message", "failed")
			s.log.Warn("message not published: the cluster did not take it", "err", err)
			return
		}
	} else {
		s.hub.Publish(channels, ev)
	}
	s.count("message", kind)
}

// expiryOf applies the TTL cap to a published expiry in seconds; 0 stays
// live only.
func (s *Server) expiryOf(sec int64) time.Duration {
	if sec <= 0 {
		return 0
	}
	d := time.Duration(sec) * time.Second
	return min(d, s.o.MessageTTL)
}

// statType cleans a statistics type as PHP does (word characters only).
func statType(t string) string {
	return strings.Map(func(r rune) rune {
		if r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' {
			return r
		}
		return -1
	}, t)
}
