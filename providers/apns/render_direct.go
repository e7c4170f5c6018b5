package apns

import (
	"bytes"
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/pushpull/pushpull/providers"
)

// renderDirect renders the common notification, the one without an APNs
// override, by appending bytes instead of building maps and encoding them
// through reflection: the map path cost a quarter of the server's CPU per
// push (once at validation, once at send). ok is false for anything it
// does not cover (an override, a bad field, data that is not a plain
// object with distinct, unescaped keys, "aps" in data); render then takes
// the general path, which also produces the error messages.
//
// The body is what render's general path produces for the same input up
// to the order of keys inside nested data objects and the spelling of
// escapes inside data strings (both kept as the caller wrote them): it is
// compact and HTML-escaped, top-level keys sorted like encoding/json sorts
// map keys, so its size is the size APNs receives (apns2 compacts and
// HTML-escapes the body once more, which changes nothing here).
func renderDirect(n *providers.Notification) (*rendered, bool) {
	if n == nil || len(n.APNs) > 0 || len(n.CollapseID) > 64 {
		return nil, false
	}
	r := &rendered{collapseID: n.CollapseID, expiration: n.ExpiresAt}
	switch n.PushType {
	case "", providers.PushAlert:
		r.pushType = providers.PushAlert
	case providers.PushBackground, providers.PushVoIP:
		r.pushType = n.PushType
	default:
		return nil, false
	}
	switch n.Priority {
	case "", providers.PriorityHigh:
		r.priority = 10
	case providers.PriorityNormal:
		r.priority = 5
	default:
		return nil, false
	}
	if r.pushType == providers.PushBackground {
		r.priority = 5 // Apple refuses priority 10 for background pushes
	}
	var members []member
	var data []byte
	if len(n.Data) > 0 {
		var ok bool
		if data, members, ok = splitObject(n.Data); !ok {
			return nil, false
		}
	}
	size := 64 + len(n.Title) + len(n.Subtitle) + len(n.Body) + len(n.Sound) + len(n.Category) + len(n.ThreadID) + len(data)
	b := make([]byte, 0, size)
	b = append(b, '{')
	i := 0
	for ; i < len(members) && members[i].key < "aps"; i++ {
		b = append(b, data[members[i].start:members[i].end]...)
		b = append(b, ',')
	}
	b = appendAPS(b, n, r.pushType == providers.PushBackground)
	for ; i < len(members); i++ {
		b = append(b, ',')
		b = append(b, data[members[i].start:members[i].end]...)
	}
	r.payload = append(b, '}')
	return r, true
}

// appendAPS appends "aps":{...} with its keys in sorted order.
func appendAPS(b []byte, n *providers.Notification, background bool) []byte {
	b = append(b, `"aps":{`...)
	first := true
	key := func(k string) {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = append(b, '"')
		b = append(b, k...)
		b = append(b, `":`...)
	}
	if n.Title != "" || n.Subtitle != "" || n.Body != "" {
		key("alert")
		b = append(b, '{')
		sep := false
		for _, f := range [...]struct{ k, v string }{{"body", n.Body}, {"subtitle", n.Subtitle}, {"title", n.Title}} {
			if f.v == "" {
				continue
			}
			if sep {
				b = append(b, ',')
			}
			sep = true
			b = append(b, '"')
			b = append(b, f.k...)
			b = append(b, `":`...)
			b = appendString(b, f.v)
		}
		b = append(b, '}')
	}
	if n.Badge != nil {
		key("badge")
		b = strconv.AppendInt(b, int64(*n.Badge), 10)
	}
	if n.Category != "" {
		key("category")
		b = appendString(b, n.Category)
	}
	if background || n.ContentAvailable {
		key("content-available")
		b = append(b, '1')
	}
	if n.MutableContent {
		key("mutable-content")
		b = append(b, '1')
	}
	if n.Sound != "" {
		key("sound")
		b = appendString(b, n.Sound)
	}
	if n.ThreadID != "" {
		key("thread-id")
		b = appendString(b, n.ThreadID)
	}
	return append(b, '}')
}

// appendString appends s as a JSON string exactly as encoding/json writes
// it (HTML-escaped). Text that needs no escape, the usual case, is copied;
// anything else goes through encoding/json.
func appendString(b []byte, s string) []byte {
	high := false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c < 0x20, c == '"', c == '\\', c == '<', c == '>', c == '&':
			return appendMarshaled(b, s)
		case c >= utf8.RuneSelf:
			high = true
		}
	}
	if high && (!utf8.ValidString(s) || strings.Contains(s, "\u2028") || strings.Contains(s, "\u2029")) {
		return appendMarshaled(b, s)
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

func appendMarshaled(b []byte, s string) []byte {
	q, _ := json.Marshal(s) // a string always encodes
	return append(b, q...)
}

// member is one top-level `"key":value` of a compacted object.
type member struct {
	key        string
	start, end int
}

// splitObject compacts and HTML-escapes raw and cuts it into its top-level
// members, sorted by key. ok is false when raw is not one valid object of
// valid UTF-8, or a key is escaped, repeated or "aps": the general path
// decides those (merge semantics, the reserved key error).
func splitObject(raw []byte) ([]byte, []member, bool) {
	if !utf8.Valid(raw) {
		return nil, nil, false
	}
	var buf bytes.Buffer
	buf.Grow(len(raw))
	if err := json.Compact(&buf, raw); err != nil {
		return nil, nil, false
	}
	data := buf.Bytes()
	if needsHTMLEscape(data) {
		var esc bytes.Buffer
		esc.Grow(len(data) + 32)
		json.HTMLEscape(&esc, data)
		data = esc.Bytes()
	}
	if len(data) < 2 || data[0] != '{' {
		return nil, nil, false
	}
	members := make([]member, 0, 8)
	i := 1
	for i < len(data)-1 {
		// Compact output: a key string starts right here.
		if data[i] != '"' {
			return nil, nil, false
		}
		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return nil, nil, false
		}
		key := data[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 || string(key) == "aps" {
			return nil, nil, false
		}
		start := i
		j := skipValue(data, i+1+end+2) // past `":`
		if j < 0 {
			return nil, nil, false
		}
		members = append(members, member{key: string(key), start: start, end: j})
		if data[j] == ',' {
			j++
		}
		i = j
	}
	slices.SortFunc(members, func(a, b member) int { return strings.Compare(a.key, b.key) })
	for k := 1; k < len(members); k++ {
		if members[k].key == members[k-1].key {
			return nil, nil, false
		}
	}
	return data, members, true
}

// skipValue returns the index just past the value starting at i in
// compact, valid JSON, or -1.
func skipValue(data []byte, i int) int {
	depth := 0
	for ; i < len(data); i++ {
		switch data[i] {
		case '"':
			for i++; i < len(data) && data[i] != '"'; i++ {
				if data[i] == '\\' {
					i++
				}
			}
		case '{', '[':
			depth++
		case '}', ']':
			if depth == 0 {
				return i // the end of the enclosing object
			}
			depth--
		case ',':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// needsHTMLEscape reports whether json.HTMLEscape would change b: <, >, &
// or the first byte of U+2028/U+2029 (then checked by HTMLEscape itself).
func needsHTMLEscape(b []byte) bool {
	for _, c := range b {
		if c == '<' || c == '>' || c == '&' || c == 0xE2 {
			return true
		}
	}
	return false
}
