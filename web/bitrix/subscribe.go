package bitrix

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
)

// Long-polling sentinel: the client adopts Last-Message-Id from a 304 only
// when Expires has exactly this value.
const pollExpires = "Thu, 01 Jan 1973 11:11:01 GMT"

// subscription is what a subscribe request asks for.
type subscription struct {
	format   hub.Format
	channels []string
	limited  []string
	publicID []byte
	user     string
	since    string
	protocol string // metrics label (hub.ConnInfo.Protocol)
}

// parseSubscription reads the mode, the channels (CHANNEL_ID or a v5
// token=) and the resume mid of a subscribe request.
func (s *Server) parseSubscription(c echo.Context) (subscription, error) {
	var sub subscription
	switch {
	case c.QueryParam("jsonRpc") == "true":
		sub.format, sub.protocol = s.rpc, hub.ProtocolBitrixV5
	case c.QueryParam("binaryMode") == "true":
		sub.format, sub.protocol = Proto, hub.ProtocolBitrixV4
	default:
		sub.format, sub.protocol = Text, hub.ProtocolBitrixV3
	}
	if mid := c.QueryParam("mid"); hub.ValidMID(mid) {
		sub.since = mid
	}
	if tok := c.QueryParam("token"); tok != "" {
		cl, err := s.parseJWT(tok)
		if err != nil {
			return sub, err
		}
		sub.user = cl.Subject
		if cl.Subject != "" {
			sub.channels = append(sub.channels, userPrefix+cl.Subject)
		}
		for _, id := range cl.channels() {
			sub.channels = append(sub.channels, privPrefix+id)
		}
		if u, err := strconv.ParseUint(cl.Subject, 10, 64); err == nil && u > 0 {
			// The user's public alias, so client publishes to the user reach it.
			pub := s.signer.DeriveID(kindPublic, u)
			sub.channels = append(sub.channels, pubPrefix+pub)
			sub.publicID = mustHex(pub)
		}
		return sub, nil
	}
	chans, err := s.signer.ParseChannelList(c.QueryParam("CHANNEL_ID"), s.o.MaxChannelsPerMessage)
	if err != nil {
		return sub, err
	}
	for _, ch := range chans {
		sub.channels = ch.HubChannels(sub.channels)
		if ch.ID != "" && ch.PublicID != "" {
			sub.limited = append(sub.limited, privPrefix+ch.ID)
		}
		if ch.ID != "" {
			if u, ok := s.signer.DerivedUser(kindPrivate, ch.ID); ok {
				sub.channels = append(sub.channels, userChannel(u))
				sub.user = strconv.FormatUint(u, 10)
			}
		}
	}
	sub.publicID = publicIDOf(chans)
	return sub, nil
}

// subscribe is GET /bitrix/sub/ and /bitrix/subws/: WebSocket when the
// request upgrades, long polling otherwise.
func (s *Server) subscribe(c echo.Context) error {
	if strings.EqualFold(c.Request().Header.Get("Upgrade"), "websocket") {
		return s.websocket(c)
	}
	return s.longPoll(c)
}

func (s *Server) longPoll(c echo.Context) error {
	cors(c)
	s.count("request", "polling")
	sub, err := s.parseSubscription(c)
	if err != nil {
		return c.String(http.StatusBadRequest, CodeWrongChannel.Reason())
	}
	defer s.hub.Track(hub.ConnInfo{User: sub.user, Client: "bitrix", Transport: hub.TransportLongPoll, Protocol: sub.protocol})()
	ss := &session{format: sub.format, channels: sub.channels, user: sub.user}
	if err := s.attach(ss); err != nil {
		return c.String(http.StatusServiceUnavailable, "server restarting")
	}
	defer s.detach(ss)

	ctx, cancel := context.WithCancel(c.Request().Context())
	defer cancel()
	stop := context.AfterFunc(s.restart, cancel)
	defer stop()
	res, err := s.hub.Poll(ctx, sub.channels, sub.since, s.o.PollHold)
	if err == nil && sub.since != "" && !res.Resumed && len(res.Events) == 0 {
		// A mid of another run (or evicted history): start live, as the
		// reference servers do with an unknown mid.
		res, err = s.hub.Poll(ctx, sub.channels, "", s.o.PollHold)
	}
	h := c.Response().Header()
	if s.restart.Err() != nil && len(res.Events) == 0 {
		return s.pollReply(c, sub.format, s.restartFrame(sub.format))
	}
	if len(res.Events) == 0 {
		if err != nil && c.Request().Context().Err() != nil {
			return nil // the client went away
		}
		h.Set("Expires", pollExpires)
		h.Set("Last-Message-Id", res.LastID)
		return c.NoContent(http.StatusNotModified)
	}
	items := make([][]byte, 0, len(res.Events))
	for i, ev := range res.Events {
		b, err := ev.Encoded(sub.format, res.Channels[i])
		if err != nil {
			continue
		}
		items = append(items, b)
	}
	return s.pollReply(c, sub.format, sub.format.Join(nil, items))
}

func (s *Server) pollReply(c echo.Context, f hub.Format, body []byte) error {
	typ := echo.MIMETextPlainCharsetUTF8
	if _, ok := f.(protoFormat); ok {
		typ = echo.MIMEOctetStream
	}
	return c.Blob(http.StatusOK, typ, body)
}

// wsTransport adapts a coder/websocket connection to hub.Transport. After
// each frame it waits BatchWindow, so that events arriving meanwhile are
// joined into the next frame by the hub writer.
type wsTransport struct {
	c      *websocket.Conn
	typ    websocket.MessageType
	window time.Duration
	once   sync.Once

	mu     sync.Mutex
	mark   *byte         // first byte of a frame whose write is awaited
	marked chan struct{} // closed once that frame is written
}

func (t *wsTransport) markNext(frame []byte) {
	t.mu.Lock()
	t.mark = unsafe.SliceData(frame)
	t.mu.Unlock()
}

func (t *wsTransport) WriteFrame(ctx context.Context, frame []byte) error {
	if err := t.c.Write(ctx, t.typ, frame); err != nil {
		return err
	}
	t.mu.Lock()
	if t.mark != nil && t.mark == unsafe.SliceData(frame) {
		t.mark = nil
		close(t.marked)
	}
	t.mu.Unlock()
	if t.window > 0 {
		tm := time.NewTimer(t.window)
		defer tm.Stop()
		select {
		case <-tm.C:
		case <-ctx.Done():
		}
	}
	return nil
}

// Close starts the closing handshake without waiting for the peer: the hub
// must never block on a client.
func (t *wsTransport) Close(code int, reason string) error {
	t.once.Do(func() { go t.c.Close(websocket.StatusCode(code), reason) })
	return nil
}

func (s *Server) websocket(c echo.Context) error {
	s.count("request", "websocket")
	opts := &websocket.AcceptOptions{CompressionMode: websocket.CompressionDisabled}
	if len(s.o.AllowedOrigins) == 0 {
		opts.InsecureSkipVerify = true
	} else {
		opts.OriginPatterns = s.o.AllowedOrigins
	}
	conn, err := websocket.Accept(c.Response(), c.Request(), opts)
	if err != nil {
		return nil // Accept has answered
	}
	conn.SetReadLimit(s.o.MaxPayload)
	sub, err := s.parseSubscription(c)
	if err != nil {
		// Accept, then close 4010: the client reloads its config (a refused
		// handshake would only make it back off).
		conn.Close(websocket.StatusCode(CodeWrongChannel), CodeWrongChannel.Reason())
		return nil
	}
	t := &wsTransport{c: conn, typ: websocket.MessageText, window: s.o.BatchWindow, marked: make(chan struct{})}
	if _, ok := sub.format.(protoFormat); ok {
		t.typ = websocket.MessageBinary
	}
	hc := s.hub.NewConn(t, sub.format, hub.ConnInfo{User: sub.user, Client: "bitrix", Transport: hub.TransportWebSocket, Protocol: sub.protocol})
	ss := &session{conn: hc, ws: t, format: sub.format, channels: sub.channels, limited: sub.limited,
		publicID: sub.publicID, user: sub.user}
	ss.lastRead.Store(s.o.Now().UnixNano())
	if err := s.attach(ss); err != nil {
		// Connected while the server announced its restart: this client
		// gets the same server_restart as the others (it tells the Bitrix
		// client to reconnect after a pause), then the close.
		frame := s.restartFrame(sub.format)
		t.markNext(frame)
		if hc.Send(frame) {
			hc.Start(nil)
			select {
			case <-t.marked:
			case <-time.After(2 * time.Second):
			}
		}
		hc.Close(int(websocket.StatusServiceRestart), "server restarting")
		return nil
	}
	defer s.detach(ss)
	if _, err := s.hub.Subscribe(hc, sub.channels, sub.since); err != nil {
		hc.Close(int(websocket.StatusServiceRestart), "server restarting")
		return nil
	}
	hc.Start(nil)

	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() {
		cancel()
		wg.Wait()
	}()
	// The read loop is not cancelled when the hub closes the connection:
	// cancelling a read drops the socket without the close frame (4029,
	// 1012) the client needs. The closing handshake ends the read instead
	// (coder/websocket gives up on a silent peer after 5 s).
	wg.Add(1)
	go func() {
		defer wg.Done()
		s.keepalive(ctx, conn, hc, ss)
	}()
	for {
		typ, b, err := conn.Read(ctx)
		if err != nil {
			// A no-op when the hub closed the connection first.
			code := int(websocket.CloseStatus(err))
			if code <= 0 {
				code = int(websocket.StatusGoingAway)
			}
			hc.Close(code, "client closed")
			break
		}
		ss.lastRead.Store(s.o.Now().UnixNano())
		s.incoming(hc, ss, typ, b)
	}
	<-hc.Done()
	return nil
}

// incoming handles a client frame: untrusted protobuf requests in binary
// mode, pong/mack/JSON-RPC in version 5; text-mode frames are ignored.
func (s *Server) incoming(hc *hub.Conn, ss *session, typ websocket.MessageType, b []byte) {
	switch ss.format.(type) {
	case protoFormat:
		if typ != websocket.MessageBinary {
			return
		}
		out, err := s.clientBinary(b, ss.publicID)
		if err != nil {
			code := codeOf(err)
			go hc.Close(int(code), code.Reason())
			return
		}
		if out != nil {
			hc.Send(out)
		}
	case rpcFormat:
		str := string(b)
		switch {
		case str == "pong":
		case strings.HasPrefix(str, "mack:"):
			// Delivery confirmed; the client resumes from its own mid.
		default:
			if reply := s.clientRPC(b, ss); reply != nil {
				hc.Send(reply)
			}
		}
	}
}

// keepalive sends protocol pings (text and binary modes; a peer that does
// not answer before the next ping is closed) or, in JSON-RPC mode, the text
// "ping" the client answers with "pong" (a client silent for three periods
// is closed).
func (s *Server) keepalive(ctx context.Context, conn *websocket.Conn, hc *hub.Conn, ss *session) {
	_, rpc := ss.format.(rpcFormat)
	every := s.o.PingInterval
	if rpc {
		every = s.o.RPCPingInterval
		hc.Send([]byte("ping"))
	}
	tk := time.NewTicker(every)
	defer tk.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		if rpc {
			if time.Duration(s.o.Now().UnixNano()-ss.lastRead.Load()) > 3*every {
				go hc.Close(int(websocket.StatusGoingAway), "ping timeout")
				return
			}
			if !hc.Send([]byte("ping")) {
				return
			}
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, every)
		err := conn.Ping(pctx)
		cancel()
		if err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
			go hc.Close(int(websocket.StatusGoingAway), "ping timeout")
			return
		}
	}
}
