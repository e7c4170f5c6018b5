package relay

// Test-side reconstruction of how the pull module builds a batch, step by
// step as in its PHP (BaseMessage::setFromArray, AppleMessage::getBatch,
// GoogleMessage/FirebaseAndroidMessage/HuaweiPushKitMessage::getPayload,
// BaseService::getBatchWithModifier of 20.5/23.100/24.500), so that tests
// and fuzz seeds are byte-for-byte what a portal sends.

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// kv is a PHP associative array (ordered); a []any is a PHP list.
type kv []pair

type pair struct {
	k string
	v any
}

func (m kv) get(k string) (any, bool) {
	for _, p := range m {
		if p.k == k {
			return p.v, true
		}
	}
	return nil, false
}

func (m kv) set(k string, v any) kv {
	for i, p := range m {
		if p.k == k {
			m[i].v = v
			return m
		}
	}
	return append(m, pair{k, v})
}

func (m kv) del(k string) kv {
	for i, p := range m {
		if p.k == k {
			return append(m[:i:i], m[i+1:]...)
		}
	}
	return m
}

// phpJSON is json_encode. hex: JSON_HEX_TAG|AMP|APOS|QUOT; raw:
// JSON_UNESCAPED_UNICODE.
func phpJSON(v any, hexFlags, raw bool) string {
	var b strings.Builder
	phpEncode(&b, v, hexFlags, raw)
	return b.String()
}

func phpEncode(b *strings.Builder, v any, hexFlags, raw bool) {
	switch t := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(t))
	case int:
		b.WriteString(strconv.Itoa(t))
	case string:
		phpString(b, t, hexFlags, raw)
	case []any:
		b.WriteByte('[')
		for i, e := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			phpEncode(b, e, hexFlags, raw)
		}
		b.WriteByte(']')
	case kv:
		if len(t) == 0 {
			b.WriteString("[]") // PHP's empty array
			return
		}
		b.WriteByte('{')
		for i, p := range t {
			if i > 0 {
				b.WriteByte(',')
			}
			phpString(b, p.k, hexFlags, raw)
			b.WriteByte(':')
			phpEncode(b, p.v, hexFlags, raw)
		}
		b.WriteByte('}')
	default:
		panic(fmt.Sprintf("phpJSON: %T", v))
	}
}

func phpString(b *strings.Builder, s string, hexFlags, raw bool) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' && hexFlags:
			b.WriteString(`\u0022`)
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '/':
			b.WriteString(`\/`)
		case r == '<' && hexFlags:
			b.WriteString(`\u003C`)
		case r == '>' && hexFlags:
			b.WriteString(`\u003E`)
		case r == '&' && hexFlags:
			b.WriteString(`\u0026`)
		case r == '\'' && hexFlags:
			b.WriteString(`\u0027`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r < 0x20:
			fmt.Fprintf(b, `\u%04x`, r)
		case r < 0x80:
			b.WriteRune(r)
		case raw && r != 0x2028 && r != 0x2029:
			b.WriteRune(r)
		default:
			var buf [2]uint16
			if r >= 0x10000 {
				r2 := r - 0x10000
				buf[0], buf[1] = uint16(0xD800+(r2>>10)), uint16(0xDC00+(r2&0x3FF))
				fmt.Fprintf(b, `\u%04x\u%04x`, buf[0], buf[1])
			} else {
				fmt.Fprintf(b, `\u%04x`, r)
			}
		}
	}
	b.WriteByte('"')
}

// pushMsg is a row of the portal's push queue as SendMessage sees it.
type pushMsg struct {
	UserID         int
	Title, Message string
	Sound          string
	Badge          int
	Category       string
	Expiry         *int
	Params         any // kv (json_encode'd) or a string
	AdvancedParams kv
}

// message is BaseMessage after setFromArray and setCustomProperty('target').
type message struct {
	token    string
	id       int
	text     *string
	title    *string
	badge    *int
	sound    string
	category *string
	expiry   int
	custom   kv
}

const serverUniqID = "d41d8cd98f00b204e9800998ecf8427e"

// newMessage follows BaseMessage::setFromArray of 23.100/24.500, or of
// 20.5 when v20 is set (title always set, sound "default" with a text).
func newMessage(token string, id int, m pushMsg, v20 bool) *message {
	msg := &message{token: token, id: id, expiry: 7200}
	if m.Title != "" || v20 {
		t := m.Title
		msg.title = &t
	}
	if m.Message != "" {
		t := strings.ReplaceAll(m.Message, "\n", " ")
		msg.text = &t
		if m.Sound != "" {
			msg.sound = m.Sound
		} else if v20 {
			msg.sound = "default"
		}
	} else if v20 {
		e := ""
		msg.text = &e
	}
	if m.Category != "" {
		c := m.Category
		msg.category = &c
	}
	if m.Expiry != nil {
		e := *m.Expiry
		if e < 0 {
			e = 14400
		}
		msg.expiry = e
	}
	switch p := m.Params.(type) {
	case kv:
		msg.custom = msg.custom.set("params", phpJSON(p, false, false))
	case string:
		if p != "" {
			msg.custom = msg.custom.set("params", p)
		}
	}
	if m.AdvancedParams != nil {
		if _, ok := m.AdvancedParams.get("senderMessage"); ok {
			e := ""
			msg.text = &e
		}
		for _, p := range m.AdvancedParams {
			msg.custom = msg.custom.set(p.k, p.v)
		}
	}
	if m.Badge >= 0 {
		b := m.Badge
		msg.badge = &b
	}
	msg.custom = msg.custom.set("target", md5hex(strconv.Itoa(m.UserID)+serverUniqID))
	return msg
}

func md5hex(s string) string { return LicenseKeyHash(s) } // md5; "DEMO" rule is irrelevant for ids

// applePayload is AppleMessage::getPayload without the trimming loop
// (tests keep payloads under the limit); voip uses the text as alert.
func (m *message) applePayload(voip bool) string {
	custom := append(kv(nil), m.custom...)
	var alert any
	if voip {
		if m.text != nil && *m.text != "" {
			alert = *m.text
		}
	} else {
		text := m.text
		if v, ok := custom.get("senderMessage"); ok {
			s := v.(string)
			text = &s
		}
		custom = custom.del("senderMessage")
		title := ""
		if v, ok := custom.get("senderName"); ok {
			title = v.(string)
		} else if m.title != nil {
			title = *m.title
		}
		custom = custom.del("senderName")
		if text != nil && *text != "" {
			alert = kv{{"body", *text}, {"title", title}}
		}
	}
	var aps kv
	if alert != nil {
		aps = kv{{"alert", alert}, {"mutable-content", 1}}
	} else {
		aps = kv{{"content-available", 1}}
	}
	if m.category != nil {
		aps = append(aps, pair{"category", *m.category})
	}
	if m.badge != nil {
		aps = append(aps, pair{"badge", *m.badge})
	}
	if m.sound != "" {
		aps = append(aps, pair{"sound", m.sound})
	}
	payload := append(kv{{"aps", aps}}, custom...)
	return phpJSON(payload, true, true)
}

// appleFrame is pack('CNNnH*', 1, id, expiry, 32, token).pack('n', len).payload.
func (m *message) appleFrame(now int64, voip bool) string {
	payload := m.applePayload(voip)
	tok, err := hex.DecodeString(m.token)
	if err != nil {
		panic(err)
	}
	expiry := uint32(0)
	if m.expiry > 0 {
		expiry = uint32(now + int64(m.expiry))
	}
	b := []byte{1}
	b = binary.BigEndian.AppendUint32(b, uint32(m.id))
	b = binary.BigEndian.AppendUint32(b, expiry)
	b = binary.BigEndian.AppendUint16(b, 32)
	b = append(b, tok...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(payload)))
	b = append(b, payload...)
	return base64.StdEncoding.EncodeToString(b)
}

func wrap(payload string) string {
	return base64.StdEncoding.EncodeToString([]byte("Content-type: application/json\r\nContent-length: " +
		strconv.Itoa(len(payload)) + "\r\n\r\n" + payload))
}

func strOrNil(s *string) any {
	if s == nil {
		return nil
	}
	return *s
}

func intOrNil(i *int) any {
	if i == nil {
		return nil
	}
	return *i
}

func (m *message) sixFields(badge any, params any) kv {
	cat := any(nil)
	if m.category != nil {
		cat = *m.category
	}
	return kv{{"contentTitle", strOrNil(m.title)}, {"contentText", strOrNil(m.text)}, {"badge", badge},
		{"messageParams", params}, {"category", cat}, {"sound", m.sound}}
}

// googleFrame is GoogleMessage::getBatch (mode 3).
func (m *message) googleFrame() string {
	data := kv{{"data", m.sixFields(intOrNil(m.badge), m.custom)}, {"time_to_live", m.expiry},
		{"priority", "high"}, {"registration_ids", []any{m.token}}}
	return wrap(phpJSON(data, true, true))
}

// fcmFrame is FirebaseAndroidMessage (mode 7, 24.500).
func (m *message) fcmFrame() string {
	badge := ""
	if m.badge != nil {
		badge = strconv.Itoa(*m.badge)
	}
	data := kv{{"message", kv{{"data", m.sixFields(badge, phpJSON(m.custom, true, true))},
		{"android", kv{{"ttl", strconv.Itoa(m.expiry) + "s"}, {"priority", "high"}}}, {"token", m.token}}}}
	return wrap(phpJSON(data, true, true))
}

// huaweiFrame is HuaweiPushKitMessage (mode 6).
func (m *message) huaweiFrame() string {
	custom := phpJSON(m.sixFields(intOrNil(m.badge), m.custom), true, true)
	data := kv{{"message", kv{{"data", custom}, {"android", kv{{"ttl", strconv.Itoa(m.expiry)}}},
		{"token", []any{m.token}}}}}
	return wrap(phpJSON(data, true, true))
}

// appGroup is one APP_ID's frames in a service batch.
type appGroup struct {
	app    string
	frames []string // "" for a frame that failed to build
}

// batch24 is BaseService::getBatchWithModifier of 24.500.
func batch24(mode int, host string, groups []appGroup) string {
	var comps []string
	for _, g := range groups {
		app := []string{strconv.Itoa(mode), "tkey=" + g.app}
		if host != "" {
			app = append(app, "h="+host)
		}
		var frames []string
		for _, f := range g.frames {
			if f != "" {
				frames = append(frames, f)
			}
		}
		if len(frames) > 0 {
			comps = append(comps, append(app, frames...)...)
		}
	}
	if len(comps) == 0 {
		return ""
	}
	return ";" + strings.Join(comps, ";")
}

// batchLegacy is getBatchWithModifier of 23.100 and older (host "" for
// 20.5), misattribution and empty segments included.
func batchLegacy(mode int, host string, groups []appGroup) string {
	batch := ""
	for _, g := range groups {
		for _, f := range g.frames {
			if batch != "" {
				batch += ";"
			}
			batch += f
		}
		mod := ";tkey=" + g.app + ";"
		if host != "" {
			mod += "h=" + host + ";"
		}
		batch = mod + batch
	}
	if batch == "" {
		return ""
	}
	return ";" + strconv.Itoa(mode) + ";" + batch
}

// phpFormBody is http_build_query(["Action"=>"SendMessage","MessageBody"=>b]).
func phpFormBody(b string) string {
	var s strings.Builder
	s.WriteString("Action=SendMessage&MessageBody=")
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '-', c == '_', c == '.':
			s.WriteByte(c)
		case c == ' ':
			s.WriteByte('+')
		default:
			fmt.Fprintf(&s, "%%%02X", c)
		}
	}
	return s.String()
}

// sortedKeys is for stable test output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
