package bitrix

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
)

// meta is what a Bitrix publish attaches to a hub.Event (Event.Meta).
type meta struct {
	body       []byte // compact JSON object, U+2028/2029 escaped
	sender     SenderType
	senderID   []byte // raw public id of a client sender
	expiry     uint32 // seconds, as published (0: live only)
	userParams map[string]json.RawMessage
	dictionary json.RawMessage
}

// errBadBody means a message body is not a JSON object.
var errBadBody = &Error{Code: CodeWrongData, Err: errors.New("body is not a JSON object")}

// newEvent builds a hub event from a published body: the raw body is kept
// for the Bitrix formats, its fields fill the event for native clients.
func newEvent(body []byte, m *meta, expiry time.Duration) (*hub.Event, error) {
	var f struct {
		ModuleID string          `json:"module_id"`
		Command  string          `json:"command"`
		Params   json.RawMessage `json:"params"`
		Extra    json.RawMessage `json:"extra"`
	}
	if err := json.Unmarshal(body, &f); err != nil {
		return nil, &Error{Code: CodeWrongData, Err: err}
	}
	if t := bytes.TrimLeft(body, " \t\r\n"); len(t) == 0 || t[0] != '{' {
		return nil, errBadBody
	}
	m.body = compactJS(body)
	if len(f.Extra) > 0 && f.Extra[0] != '{' {
		f.Extra = nil
	}
	return &hub.Event{
		Expiry: expiry, ModuleID: f.ModuleID, Command: f.Command,
		Params: f.Params, Extra: f.Extra, Meta: m,
	}, nil
}

// compactJS returns the valid JSON b without insignificant whitespace and
// with U+2028/U+2029 escaped: legacy frames are cut out by a regexp whose
// '.' matches no line terminator.
func compactJS(b []byte) []byte {
	var buf bytes.Buffer
	buf.Grow(len(b))
	if err := json.Compact(&buf, b); err != nil {
		return b
	}
	out := buf.Bytes()
	if !bytes.Contains(out, []byte("\u2028")) && !bytes.Contains(out, []byte("\u2029")) {
		return out
	}
	out = bytes.ReplaceAll(out, []byte("\u2028"), []byte(`\u2028`))
	return bytes.ReplaceAll(out, []byte("\u2029"), []byte(`\u2029`))
}

// bodyOf returns the Bitrix message body of ev: the published body, or one
// built from the event's fields for events published natively.
func bodyOf(ev *hub.Event) (body []byte, m *meta) {
	if m, ok := ev.Meta.(*meta); ok {
		return m.body, m
	}
	b := make([]byte, 0, 64+len(ev.ModuleID)+len(ev.Command)+len(ev.Params)+len(ev.Extra))
	b = append(b, `{"module_id":`...)
	b, _ = appendJSON(b, ev.ModuleID)
	b = append(b, `,"command":`...)
	b, _ = appendJSON(b, ev.Command)
	b = append(b, `,"params":`...)
	if len(ev.Params) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, ev.Params...)
	}
	b = append(b, `,"extra":`...)
	if len(ev.Extra) == 0 {
		b = append(b, "{}"...)
	} else {
		b = append(b, ev.Extra...)
	}
	b = append(b, '}')
	return compactJS(b), nil
}

func appendJSON(b []byte, v any) ([]byte, error) {
	j, err := json.Marshal(v)
	return append(b, j...), err
}

// midBytes is the 13-byte protobuf form of a 26-digit mid.
func midBytes(mid string) []byte {
	b, err := hex.DecodeString(mid)
	if err != nil {
		return []byte(mid)
	}
	return b
}

// midCounter is the legacy integer id: the counter part of a mid.
func midCounter(mid string) string {
	if len(mid) != 26 {
		return "0"
	}
	c := strings.TrimLeft(mid[10:], "0")
	if c == "" {
		return "0"
	}
	return c
}

// Text is the legacy text format (versions 1–3, and 4 without binaryMode):
//
//	#!NGINXNMS!#{"id":n,"mid":"…","channel":"-","tag":"…","time":"…","text":body}#!NGINXNME!#
//
// Frames are joined by concatenation.
var Text hub.Format = textFormat{}

type textFormat struct{}

func (textFormat) Name() string          { return "bitrix-text" }
func (textFormat) Variant(string) string { return "" }

func (textFormat) Encode(ev *hub.Event, _ string) ([]byte, error) {
	body, _ := bodyOf(ev)
	return appendTextFrame(make([]byte, 0, 160+len(body)), ev.ID, ev.Created, body), nil
}

func appendTextFrame(b []byte, mid string, created time.Time, body []byte) []byte {
	ms := created.UnixMilli()
	tag := strconv.FormatInt(ms%1000+1000, 10)[1:]
	b = append(b, `#!NGINXNMS!#{"id":`...)
	b = append(b, midCounter(mid)...)
	b = append(b, `,"mid":"`...)
	b = append(b, mid...)
	b = append(b, `","channel":"-","tag":"`...)
	b = append(b, tag...)
	b = append(b, `","time":"`...)
	b = created.UTC().AppendFormat(b, http1123)
	b = append(b, `","text":`...)
	b = append(b, body...)
	return append(b, "}#!NGINXNME!#"...)
}

// http1123 is JavaScript's toUTCString() layout.
const http1123 = "Mon, 02 Jan 2006 15:04:05 GMT"

func (textFormat) Join(dst []byte, items [][]byte) []byte {
	for _, it := range items {
		dst = append(dst, it...)
	}
	return dst
}

// Proto is the Push server 2.0 binary format (version 4, binaryMode=true):
// each event is a ResponseBatch with one OutgoingMessage, always with id,
// created and sender; frames are joined by concatenation.
var Proto hub.Format = protoFormat{}

type protoFormat struct{}

func (protoFormat) Name() string          { return "bitrix-proto" }
func (protoFormat) Variant(string) string { return "" }

func (protoFormat) Encode(ev *hub.Event, _ string) ([]byte, error) {
	body, m := bodyOf(ev)
	return AppendOutgoing(nil, outgoing(ev.ID, ev.Created, ev.Expiry, body, m)), nil
}

func outgoing(mid string, created time.Time, expiry time.Duration, body []byte, m *meta) *OutgoingMessage {
	om := &OutgoingMessage{ID: midBytes(mid), Body: body, Created: uint32(created.Unix()),
		Expiry: uint32(expiry / time.Second), Sender: SenderBackend}
	if m != nil && m.sender != SenderUnknown {
		om.Sender, om.SenderID = m.sender, m.senderID
	}
	return om
}

func (protoFormat) Join(dst []byte, items [][]byte) []byte {
	for _, it := range items {
		dst = append(dst, it...)
	}
	return dst
}

// rpcFormat is the version 5 JSON-RPC format: each event is an
// "incoming.message" notification; several are joined into a JSON array.
// Encodings vary per user because of user_params.
type rpcFormat struct{ s *Signer }

func (rpcFormat) Name() string { return "bitrix-rpc" }

func (f rpcFormat) Variant(channel string) string {
	if u, ok := f.userOf(channel); ok {
		return "u" + strconv.FormatUint(u, 10)
	}
	return ""
}

// userOf returns the user a hub channel belongs to: user:<u>, or a private
// channel derived for u.
func (f rpcFormat) userOf(channel string) (uint64, bool) {
	if rest, ok := strings.CutPrefix(channel, userPrefix); ok {
		u, err := strconv.ParseUint(rest, 10, 64)
		return u, err == nil
	}
	if rest, ok := strings.CutPrefix(channel, privPrefix); ok {
		return f.s.DerivedUser(kindPrivate, rest)
	}
	return 0, false
}

func (f rpcFormat) Encode(ev *hub.Event, channel string) ([]byte, error) {
	body, m := bodyOf(ev)
	var userParams json.RawMessage
	if m != nil && m.userParams != nil {
		if u, ok := f.userOf(channel); ok {
			userParams = m.userParams[strconv.FormatUint(u, 10)]
		}
	}
	return appendRPCMessage(make([]byte, 0, 128+len(body)), ev.ID, body, m, userParams), nil
}

func appendRPCMessage(b []byte, mid string, body []byte, m *meta, userParams json.RawMessage) []byte {
	b = append(b, `{"jsonrpc":"2.0","method":"incoming.message","params":{"mid":"`...)
	b = append(b, mid...)
	b = append(b, `","body":`...)
	b = append(b, body...)
	sender := SenderBackend
	var senderID []byte
	if m != nil && m.sender != SenderUnknown {
		sender, senderID = m.sender, m.senderID
	}
	b = append(b, `,"sender":{"type":`...)
	b = strconv.AppendInt(b, int64(sender), 10)
	if len(senderID) > 0 {
		b = append(b, `,"id":"`...)
		b = hex.AppendEncode(b, senderID)
		b = append(b, '"')
	}
	b = append(b, '}')
	if len(userParams) > 0 {
		b = append(b, `,"user_params":`...)
		b = append(b, compactJS(userParams)...)
	}
	if m != nil && len(m.dictionary) > 0 {
		b = append(b, `,"dictionary":`...)
		b = append(b, compactJS(m.dictionary)...)
	}
	return append(b, "}}"...)
}

func (rpcFormat) Join(dst []byte, items [][]byte) []byte {
	dst = append(dst, '[')
	for i, it := range items {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, it...)
	}
	return append(dst, ']')
}
