package bitrix

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
)

// rpcRequest is one JSON-RPC 2.0 request or notification.
type rpcRequest struct {
	JSONRPC string          `json:"jsonrpc"`
	Method  string          `json:"method"`
	Params  json.RawMessage `json:"params"`
	ID      json.RawMessage `json:"id,omitempty"`
}

// rpcError is a JSON-RPC error object.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

// JSON-RPC error codes.
const (
	rpcParseError     = -32700
	rpcInvalidRequest = -32600
	rpcMethodNotFound = -32601
	rpcInvalidParams  = -32602
)

// publishParams is the PHP Message DTO (and the client's publish params).
type publishParams struct {
	UserList    []json.Number              `json:"userList"`
	ChannelList []json.RawMessage          `json:"channelList"`
	Body        json.RawMessage            `json:"body"`
	UserParams  map[string]json.RawMessage `json:"user_params"`
	Dictionary  json.RawMessage            `json:"dictionary"`
	Expiry      *int64                     `json:"expiry"`
}

// parseRPCBody splits a JSON-RPC body into its requests; batch reports an
// array.
func parseRPCBody(body []byte) (reqs []rpcRequest, batch bool, err error) {
	t := bytes.TrimLeft(body, " \t\r\n")
	if len(t) > 0 && t[0] == '[' {
		err = json.Unmarshal(t, &reqs)
		return reqs, true, err
	}
	var r rpcRequest
	err = json.Unmarshal(t, &r)
	return []rpcRequest{r}, false, err
}

// jsonRPC is POST /bitrix/api/?signature=…: the version 5 publisher. The
// signature is the HMAC of the raw body; the host id (hostId= or X-HostId)
// is accepted and logged (single tenant: one key).
func (s *Server) jsonRPC(c echo.Context) error {
	body, err := s.readBody(c)
	if err != nil {
		return fail(c, err)
	}
	if s.signer.HasKey() && !s.signer.Verify(string(body), c.QueryParam("signature")) {
		return c.JSON(http.StatusUnauthorized, rpcReply(nil, nil, &rpcError{Code: rpcInvalidRequest, Message: "wrong signature"}))
	}
	reqs, batch, err := parseRPCBody(body)
	if err != nil {
		return c.JSON(http.StatusBadRequest, rpcReply(nil, nil, &rpcError{Code: rpcParseError, Message: "parse error"}))
	}
	// Validate every publish first, answer, then fan out: PHP waits 1 s.
	var pubs []pending
	var replies []map[string]any
	for _, r := range reqs {
		if r.Method == "publish" {
			s.count("request", "publish")
			p, err := s.preparePublish(r.Params, nil)
			if err != nil {
				replies = append(replies, rpcReply(r.ID, nil, &rpcError{Code: rpcInvalidParams, Message: err.Error()}))
				continue
			}
			pubs = append(pubs, p...)
			replies = append(replies, rpcReply(r.ID, true, nil))
			continue
		}
		res, rerr := s.backendMethod(r)
		replies = append(replies, rpcReply(r.ID, res, rerr))
	}
	var out any = replies[0]
	if batch {
		out = replies
	}
	b, _ := json.Marshal(out)
	c.Response().Header().Set(echo.HeaderContentType, echo.MIMEApplicationJSONCharsetUTF8)
	c.Response().WriteHeader(http.StatusOK)
	_, _ = c.Response().Write(b)
	c.Response().Flush()
	for _, p := range pubs {
		s.publishEvent(p.channels, p.ev, p.kind)
	}
	return nil
}

func rpcReply(id json.RawMessage, result any, err *rpcError) map[string]any {
	m := map[string]any{"jsonrpc": "2.0"}
	if len(id) > 0 {
		m["id"] = id
	} else {
		m["id"] = nil
	}
	if err != nil {
		m["error"] = err
	} else {
		m["result"] = result
	}
	return m
}

// backendMethod serves the non-publish methods PHP calls.
func (s *Server) backendMethod(r rpcRequest) (any, *rpcError) {
	s.count("request", r.Method)
	switch r.Method {
	case "getUsersLastSeen":
		return s.usersLastSeen(r.Params)
	case "updateUsersLastSeen":
		return s.updateLastSeen(r.Params)
	case "ping":
		return map[string]any{}, nil
	case "serverStats":
		return s.serverStats(), nil
	}
	return nil, &rpcError{Code: rpcMethodNotFound, Message: "method not found"}
}

func (s *Server) usersLastSeen(params json.RawMessage) (any, *rpcError) {
	var p struct {
		UserList []json.Number `json:"userList"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, &rpcError{Code: rpcInvalidParams, Message: "userList: " + err.Error()}
	}
	out := map[string]int64{}
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range p.UserList {
		if _, ago, ok := s.presence.lastSeen(userPrefix+u.String(), now); ok {
			out[u.String()] = int64(ago / time.Second)
		}
	}
	return out, nil
}

// updateLastSeen seeds last-seen times ({"uid": unixTime}; a list of
// {"userId","timestamp"}-like pairs is accepted too).
func (s *Server) updateLastSeen(params json.RawMessage) (any, *rpcError) {
	seeds := map[string]int64{}
	if err := json.Unmarshal(params, &seeds); err != nil {
		var list []map[string]json.Number
		if err2 := json.Unmarshal(params, &list); err2 != nil {
			return nil, &rpcError{Code: rpcInvalidParams, Message: "expected {userId: timestamp}"}
		}
		for _, it := range list {
			u, t := firstOf(it, "userId", "user_id", "id"), firstOf(it, "timestamp", "lastSeen", "time")
			if ts, err := t.Int64(); err == nil && u != "" {
				seeds[u.String()] = ts
			}
		}
	}
	now := s.o.Now()
	s.mu.Lock()
	for u, ts := range seeds {
		s.presence.seed(userPrefix+u, time.Unix(ts, 0), now)
	}
	s.mu.Unlock()
	return true, nil
}

func firstOf(m map[string]json.Number, keys ...string) json.Number {
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v
		}
	}
	return ""
}

// preparePublish validates publish params. from nil is the trusted PHP
// sender: channelList may hold raw private ids. Otherwise the sender is a
// client with that public id: only signed public channels ("pub.sig" or
// {publicId, signature}), and users reached through their public alias.
func (s *Server) preparePublish(params json.RawMessage, from *session) ([]pending, error) {
	var p publishParams
	d := json.NewDecoder(bytes.NewReader(params))
	d.UseNumber()
	if err := d.Decode(&p); err != nil {
		return nil, &Error{Code: CodeWrongData, Err: err}
	}
	if len(p.UserList)+len(p.ChannelList) == 0 {
		return nil, &Error{Code: CodeNoChannels}
	}
	if len(p.UserList)+len(p.ChannelList) > s.o.MaxChannelsPerMessage*2 {
		return nil, ErrTooManyChannels
	}
	chans := make([]string, 0, len(p.UserList)+len(p.ChannelList))
	for _, u := range p.UserList {
		id, err := strconv.ParseUint(u.String(), 10, 64)
		if err != nil || id == 0 {
			return nil, &Error{Code: CodeInvalidChannel, Err: errors.New("userList: " + u.String())}
		}
		if from == nil {
			chans = append(chans, userChannel(id))
		} else {
			chans = append(chans, pubPrefix+s.signer.DeriveID(kindPublic, id))
		}
	}
	for _, raw := range p.ChannelList {
		ch, err := s.rpcChannel(raw, from == nil)
		if err != nil {
			return nil, err
		}
		chans = append(chans, ch)
	}
	sec := int64(86400)
	if p.Expiry != nil {
		sec = *p.Expiry
	}
	expiry := s.expiryOf(sec)
	m := &meta{sender: SenderBackend, expiry: uint32(expiry.Seconds()), userParams: p.UserParams}
	if len(p.Dictionary) > 0 && !bytes.Equal(p.Dictionary, []byte("null")) {
		m.dictionary = p.Dictionary
	}
	if from != nil {
		m.sender, m.senderID = SenderClient, from.publicID
	}
	ev, err := newEvent(p.Body, m, expiry)
	if err != nil {
		return nil, err
	}
	return []pending{{channels: chans, ev: ev, kind: "publish"}}, nil
}

// rpcChannel resolves one channelList element to its hub channel.
func (s *Server) rpcChannel(raw json.RawMessage, trusted bool) (string, error) {
	var str string
	if err := json.Unmarshal(raw, &str); err != nil {
		var obj struct {
			PublicID  string `json:"publicId"`
			Signature string `json:"signature"`
		}
		if err := json.Unmarshal(raw, &obj); err != nil || obj.PublicID == "" {
			return "", &Error{Code: CodeInvalidChannel}
		}
		str = obj.PublicID + "." + obj.Signature
	}
	if trusted && isHex32(str) {
		return privPrefix + str, nil
	}
	id, sig, ok := strings.Cut(str, ".")
	if !ok || !isHex32(id) {
		return "", &Error{Code: CodeInvalidChannel}
	}
	if !s.signer.Verify("public:"+id, sig) {
		if trusted && s.signer.Verify(id, sig) {
			return privPrefix + id, nil
		}
		return "", &Error{Code: CodeBadSignature}
	}
	return pubPrefix + id, nil
}

// clientRPC serves JSON-RPC requests from a version 5 client and returns
// the reply frame (nil when nothing is to be answered).
func (s *Server) clientRPC(body []byte, ss *session) []byte {
	reqs, batch, err := parseRPCBody(body)
	if err != nil {
		b, _ := json.Marshal(rpcReply(nil, nil, &rpcError{Code: rpcParseError, Message: "parse error"}))
		return b
	}
	var replies []map[string]any
	for _, r := range reqs {
		var res any
		var rerr *rpcError
		switch r.Method {
		case "publish":
			s.count("request", "publish")
			pubs, err := s.preparePublish(r.Params, ss)
			if err != nil {
				rerr = &rpcError{Code: int(codeOf(err)), Message: codeOf(err).Reason()}
				break
			}
			for _, p := range pubs {
				s.publishEvent(p.channels, p.ev, p.kind)
			}
			res = true
		case "getUsersLastSeen":
			res, rerr = s.usersLastSeen(r.Params)
		case "ping":
			res = map[string]any{}
		case "listChannels":
			res = map[string]any{"channels": s.channelsOf(ss)}
		case "subscribeStatusChange", "unsubscribeStatusChange":
			// Status-change notifications are not produced yet: accept so
			// the client does not time out.
			res = map[string]any{}
		default:
			rerr = &rpcError{Code: rpcMethodNotFound, Message: "method not found"}
		}
		if len(r.ID) == 0 {
			continue // a notification gets no reply
		}
		replies = append(replies, rpcReply(r.ID, res, rerr))
	}
	if len(replies) == 0 {
		return nil
	}
	var out any = replies[0]
	if batch {
		out = replies
	}
	b, _ := json.Marshal(out)
	return b
}

// channelsOf lists the Bitrix ids a session is subscribed to.
func (s *Server) channelsOf(ss *session) []string {
	var out []string
	for _, ch := range ss.channels {
		if id, ok := strings.CutPrefix(ch, privPrefix); ok {
			out = append(out, id)
		} else if id, ok := strings.CutPrefix(ch, pubPrefix); ok {
			out = append(out, id)
		}
	}
	return out
}

var _ hub.Format = rpcFormat{}
