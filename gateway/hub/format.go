package hub

import (
	"strings"
	"unicode/utf8"
)

// Format renders events for one wire protocol. Implementations must be safe
// for concurrent use; Name must be unique among the formats of a process
// because encodings are cached per (Name, Variant).
type Format interface {
	// Name identifies the format in caches, stats and logs ("native",
	// "bitrix-text", ...).
	Name() string
	// Variant groups channels whose encoding of an event is identical
	// (native: the channel kind, "user" or "shared").
	Variant(channel string) string
	// Encode renders ev as delivered on channel. The hub calls it once per
	// (event, format, variant) and shares the result, which must therefore
	// not be modified afterwards.
	Encode(ev *Event, channel string) ([]byte, error)
	// Join appends to dst one frame holding several encoded events, in
	// order (native: separated by '\n').
	Join(dst []byte, items [][]byte) []byte
}

// Native is the pushpull JSON format (API.md):
//
//	{"type":"event","id":mid,"channel":kind,"module_id":…,"command":…,"params":…,"extra":…}
//
// where kind is the channel up to its first ':' ("user" for "user:42",
// "shared" for "shared"). Several events in a frame are separated by '\n'.
var Native Format = nativeFormat{}

type nativeFormat struct{}

func (nativeFormat) Name() string { return "native" }

func (nativeFormat) Variant(channel string) string {
	if i := strings.IndexByte(channel, ':'); i >= 0 {
		return channel[:i]
	}
	return channel
}

func (f nativeFormat) Encode(ev *Event, channel string) ([]byte, error) {
	b := make([]byte, 0, 96+len(ev.ModuleID)+len(ev.Command)+len(ev.Params)+len(ev.Extra))
	b = append(b, `{"type":"event","id":"`...)
	b = append(b, ev.ID...)
	b = append(b, `","channel":`...)
	b = appendJSONString(b, f.Variant(channel))
	b = append(b, `,"module_id":`...)
	b = appendJSONString(b, ev.ModuleID)
	b = append(b, `,"command":`...)
	b = appendJSONString(b, ev.Command)
	b = append(b, `,"params":`...)
	if len(ev.Params) == 0 {
		b = append(b, "null"...)
	} else {
		b = append(b, ev.Params...)
	}
	if len(ev.Extra) > 0 {
		b = append(b, `,"extra":`...)
		b = append(b, ev.Extra...)
	}
	return append(b, '}'), nil
}

func (nativeFormat) Join(dst []byte, items [][]byte) []byte {
	for i, it := range items {
		if i > 0 {
			dst = append(dst, '\n')
		}
		dst = append(dst, it...)
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD;
// U+2028/U+2029 are escaped so the output is also safe as JavaScript.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
