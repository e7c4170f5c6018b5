package bitrix

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
)

// readBody reads the request body up to MaxPayload.
func (s *Server) readBody(c echo.Context) ([]byte, error) {
	r := http.MaxBytesReader(c.Response(), c.Request().Body, s.o.MaxPayload)
	return io.ReadAll(r)
}

// fail answers a protocol error over HTTP: status and "<code>: <reason>".
func fail(c echo.Context, err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return c.String(http.StatusRequestEntityTooLarge, "Payload Too Large")
	}
	code := codeOf(err)
	return c.String(code.HTTPStatus(), code.Reason())
}

// ack answers 200 with an empty text/plain body and flushes it, so that the
// publisher is released before the fan-out (PHP waits at most 1 s).
func ack(c echo.Context) {
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMETextPlainCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	c.Response().Flush()
}

// publish is POST /bitrix/pub/: a text message to CHANNEL_ID (version 3) or
// a protobuf RequestBatch with ?binaryMode=true (version 4). Trusted.
func (s *Server) publish(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return fail(c, err)
	}
	if c.QueryParam("binaryMode") == "true" {
		return s.publishBinary(c, body)
	}
	s.count("request", "publish")
	chans, err := s.signer.ParsePublishList(c.QueryParam("CHANNEL_ID"), s.o.MaxChannelsPerMessage)
	if err != nil {
		return fail(c, err)
	}
	if len(body) == 0 {
		return c.String(http.StatusOK, "")
	}
	expiry := s.o.TextZeroExpiry
	if v := c.Request().Header.Get("Message-Expiry"); v != "" {
		if sec, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil && sec > 0 {
			expiry = s.expiryOf(sec)
		}
	}
	expiry = min(max(expiry, 0), s.o.MessageTTL)
	ev, err := newEvent(body, &meta{sender: SenderBackend, expiry: uint32(expiry.Seconds())}, expiry)
	if err != nil {
		return fail(c, err)
	}
	targets := make([]string, 0, len(chans))
	for _, ch := range chans {
		if ch.ID != "" {
			targets = append(targets, privPrefix+ch.ID)
		} else {
			targets = append(targets, pubPrefix+ch.PublicID)
		}
	}
	ack(c)
	s.publishEvent(targets, ev, "")
	return nil
}

// publishBinary serves a trusted RequestBatch.
func (s *Server) publishBinary(c echo.Context, body []byte) error {
	req, err := ParseRequestBatch(body, s.o.MaxMessagesPerRequest)
	if err != nil {
		return fail(c, err)
	}
	switch req.Command {
	case cmdIncomingMessages:
		s.count("request", "incomingMessages")
		pubs, err := s.prepare(req.Messages, nil)
		if err != nil {
			return fail(c, err)
		}
		ack(c)
		for _, p := range pubs {
			s.publishEvent(p.channels, p.ev, p.kind)
		}
		return nil
	case cmdChannelStats:
		s.count("request", "channelStats")
		return c.Blob(http.StatusOK, echo.MIMEOctetStream, AppendChannelStats(nil, s.channelStats(req.Channels)))
	case cmdServerStats:
		s.count("request", "serverStats")
		js, _ := json.Marshal(s.serverStats())
		return c.Blob(http.StatusOK, echo.MIMEOctetStream, AppendJSONResponse(nil, js))
	}
	return fail(c, &Error{Code: CodeWrongCommand})
}

// pending is a validated message ready to publish.
type pending struct {
	channels []string
	ev       *hub.Event
	kind     string
}

// prepare validates incoming protobuf messages. A nil from means a trusted
// publisher (sender BACKEND, any receiver); otherwise from is the client's
// public id: receivers must be public and signed (sender CLIENT).
func (s *Server) prepare(msgs []IncomingMessage, from []byte) ([]pending, error) {
	if len(msgs) > s.o.MaxMessagesPerRequest {
		return nil, ErrTooManyMessages
	}
	out := make([]pending, 0, len(msgs))
	for _, m := range msgs {
		if len(m.Receivers) == 0 {
			return nil, &Error{Code: CodeNoChannels}
		}
		if len(m.Receivers) > s.o.MaxChannelsPerMessage {
			return nil, ErrTooManyChannels
		}
		chans := make([]string, 0, len(m.Receivers))
		for _, r := range m.Receivers {
			if len(r.ID) != 16 {
				return nil, &Error{Code: CodeInvalidChannel}
			}
			id := hex.EncodeToString(r.ID)
			if from != nil {
				if r.IsPrivate {
					return nil, &Error{Code: CodePrivateNotAllowed}
				}
				if !s.signer.VerifyRaw([]byte("public:"+id), r.Signature) {
					return nil, &Error{Code: CodeBadSignature}
				}
			}
			if r.IsPrivate {
				chans = append(chans, privPrefix+id)
			} else {
				chans = append(chans, pubPrefix+id)
			}
		}
		expiry := s.expiryOf(int64(m.Expiry))
		mt := &meta{sender: SenderBackend, expiry: uint32(expiry.Seconds())}
		if from != nil {
			mt.sender, mt.senderID = SenderClient, from
		}
		ev, err := newEvent([]byte(m.Body), mt, expiry)
		if err != nil {
			return nil, err
		}
		out = append(out, pending{channels: chans, ev: ev, kind: statType(m.Type)})
	}
	return out, nil
}

// channelStats answers which of ids have a live (or recent) subscriber.
func (s *Server) channelStats(ids []Receiver) []ChannelStat {
	out := make([]ChannelStat, 0, len(ids))
	for _, r := range ids {
		if len(r.ID) != 16 {
			continue
		}
		prefix := pubPrefix
		if r.IsPrivate {
			prefix = privPrefix
		}
		out = append(out, ChannelStat{ID: r.ID, IsPrivate: r.IsPrivate,
			IsOnline: s.online(prefix+hex.EncodeToString(r.ID)) > 0})
	}
	return out
}

// channelStatsText is GET /bitrix/pub/?CHANNEL_ID=a/b: the online channels
// as {"infos":[{"channel","subscribers"}]}.
func (s *Server) channelStatsText(c echo.Context) error {
	s.count("request", "channelStats")
	type info struct {
		Channel     string `json:"channel"`
		Subscribers int    `json:"subscribers"`
	}
	infos := []info{}
	for _, id := range strings.Split(c.QueryParam("CHANNEL_ID"), "/") {
		id, _, _ = strings.Cut(id, ".")
		id, _, _ = strings.Cut(id, ":")
		if !isHex32(id) {
			continue
		}
		if n := s.online(privPrefix + id); n > 0 {
			infos = append(infos, info{Channel: id, Subscribers: n})
		}
	}
	b, _ := json.Marshal(map[string]any{"infos": infos})
	return c.Blob(http.StatusOK, echo.MIMETextPlainCharsetUTF8, b)
}

// serverStats is this process's /server-stat/ entry.
func (s *Server) serverStats() []map[string]any {
	s.mu.Lock()
	ws, polls := 0, 0
	for ss := range s.sessions {
		if ss.conn != nil {
			ws++
		} else {
			polls++
		}
	}
	channels := len(s.presence.live)
	daily := map[string]any{"requests": clone(s.stats.requests), "messages": clone(s.stats.messages)}
	s.mu.Unlock()
	return []map[string]any{{
		"pid": os.Getpid(), "date": s.o.Now().UnixMilli(), "processUniqueId": s.hub.Epoch(),
		"channels": channels, "websockets": ws, "pollings": polls, "clusterMode": false,
		"limits": map[string]any{
			"maxPayload": s.o.MaxPayload, "maxConnPerChannel": s.o.MaxConnsPerChannel,
			"maxMessagesPerRequest": s.o.MaxMessagesPerRequest, "maxChannelsPerRequest": s.o.MaxChannelsPerMessage,
		},
		"daily": daily,
	}}
}

func clone(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// serverStat is GET /server-stat/.
func (s *Server) serverStat(c echo.Context) error {
	return c.JSON(http.StatusOK, s.serverStats())
}

// options answers CORS preflights as the reference servers do.
func (s *Server) options(c echo.Context) error {
	cors(c)
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Methods", "POST, GET, DELETE, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "If-Modified-Since, If-None-Match")
	return c.NoContent(http.StatusOK)
}

func cors(c echo.Context) {
	h := c.Response().Header()
	h.Set("Access-Control-Allow-Origin", "*")
	h.Set("Access-Control-Expose-Headers", "Last-Message-Id")
}

// publishWeb is POST /bitrix/pubweb/ and /bitrix/rest/: untrusted browser
// publish. Version 4 sends a binary RequestBatch; version 5 long polling
// sends "mack:<mid>" acknowledgements and JSON-RPC requests here.
func (s *Server) publishWeb(c echo.Context) error {
	cors(c)
	body, err := s.readBody(c)
	if err != nil {
		return fail(c, err)
	}
	if strings.HasPrefix(string(body), "mack:") {
		return c.String(http.StatusOK, "")
	}
	var from []byte
	var user string
	if tok := c.QueryParam("token"); tok != "" {
		cl, err := s.parseJWT(tok)
		if err != nil {
			return fail(c, err)
		}
		user = cl.Subject
	} else {
		chans, err := s.signer.ParseChannelList(c.QueryParam("CHANNEL_ID"), s.o.MaxChannelsPerMessage)
		if err != nil {
			return fail(c, err)
		}
		from = publicIDOf(chans)
		if u, ok := derivedUserOf(s.signer, chans); ok && from == nil {
			user = strconv.FormatUint(u, 10)
		}
	}
	if t := strings.TrimLeft(string(body), " \t\r\n"); t != "" && (t[0] == '{' || t[0] == '[') {
		reply := s.clientRPC(body, &session{publicID: from, user: user})
		return c.Blob(http.StatusOK, echo.MIMEApplicationJSONCharsetUTF8, reply)
	}
	out, err := s.clientBinary(body, from)
	if err != nil {
		return fail(c, err)
	}
	if out == nil {
		return c.String(http.StatusOK, "")
	}
	return c.Blob(http.StatusOK, echo.MIMEOctetStream, out)
}

// clientBinary serves an untrusted RequestBatch from a client whose public
// id is from; it returns the reply to send, if any.
func (s *Server) clientBinary(body, from []byte) ([]byte, error) {
	req, err := ParseRequestBatch(body, s.o.MaxMessagesPerRequest)
	if err != nil {
		return nil, err
	}
	switch req.Command {
	case cmdIncomingMessages:
		if from == nil {
			return nil, &Error{Code: CodePublicRequired}
		}
		s.count("request", "incomingMessages")
		pubs, err := s.prepare(req.Messages, from)
		if err != nil {
			return nil, err
		}
		for _, p := range pubs {
			s.publishEvent(p.channels, p.ev, p.kind)
		}
		return nil, nil
	case cmdChannelStats:
		s.count("request", "channelStats")
		return AppendChannelStats(nil, s.channelStats(req.Channels)), nil
	case cmdNone:
		return nil, &Error{Code: CodeWrongCommand}
	}
	return nil, &Error{Code: CodeNotAllowed}
}

// publicIDOf returns the raw public id of the first "priv:pub" element.
func publicIDOf(chans []Channel) []byte {
	for _, ch := range chans {
		if ch.ID != "" && ch.PublicID != "" {
			b, _ := hex.DecodeString(ch.PublicID)
			return b
		}
	}
	return nil
}

// derivedUserOf returns the user of the first private channel derived by the
// config endpoint.
func derivedUserOf(s *Signer, chans []Channel) (uint64, bool) {
	for _, ch := range chans {
		if ch.ID != "" {
			if u, ok := s.DerivedUser(kindPrivate, ch.ID); ok {
				return u, true
			}
		}
	}
	return 0, false
}
