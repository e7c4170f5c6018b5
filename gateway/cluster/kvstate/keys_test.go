package kvstate

import (
	"testing"
	"time"
)

// Any tag and user make a valid key that parses back to them; any key or
// value read from the bucket decodes or fails without panicking.
func FuzzKeysAndValues(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", "*", ">", "ключ", "=", "A", "dGFn.dXNlcg"} {
		f.Add(s, s+"x", []byte(s))
	}
	f.Add("t", "u", []byte("1740830400000:1860000"))
	f.Add("t", "u", []byte("9223372036854775807:9223372036854775807"))
	f.Fuzz(func(t *testing.T, tag, user string, raw []byte) {
		k := watchKey(tag, user)
		if !validKey(k) {
			t.Fatalf("watchKey(%q, %q) = %q: not a valid KV key", tag, user, k)
		}
		if gt, gu, err := parseWatchKey(k); err != nil || gt != tag || gu != user {
			t.Fatalf("parseWatchKey(%q) = %q, %q, %v", k, gt, gu, err)
		}
		pk, err := parsePresenceKey(userKey("n-1", user))
		if err != nil || pk.user != user || pk.node != "n-1" || !pk.isUser {
			t.Fatalf("parsePresenceKey(userKey(%q)) = %+v, %v", user, pk, err)
		}
		if e, err := decodeWatch(raw); err == nil {
			if e.ttl <= 0 {
				t.Fatalf("decodeWatch(%q) accepted ttl %v", raw, e.ttl)
			}
			if back, _ := decodeWatch(encodeWatch(e)); back != e {
				t.Fatalf("value %q does not round-trip", raw)
			}
		}
		_, _, _ = parseWatchKey(string(raw))
		_, _ = parsePresenceKey(string(raw))
		_, _ = decodeBeat(raw)
	})
}

// validKey is the KV key rule: non-empty dot-separated tokens of
// [-/_=A-Za-z0-9].
func validKey(k string) bool {
	if k == "" || k[0] == '.' || k[len(k)-1] == '.' {
		return false
	}
	for i := range len(k) {
		c := k[i]
		ok := c == '-' || c == '/' || c == '_' || c == '=' || c == '.' ||
			'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		if !ok || (c == '.' && k[i-1] == '.') {
			return false
		}
	}
	return true
}

func TestNewWatchMatchesStoredPrecision(t *testing.T) {
	t.Parallel()
	now := time.Date(2025, 3, 1, 12, 0, 0, 123456789, time.UTC)
	e := newWatch(now, 1860*time.Second+5*time.Microsecond)
	back, err := decodeWatch(encodeWatch(e))
	if err != nil || !back.expires.Equal(e.expires) || back.ttl != e.ttl {
		t.Fatalf("entry %+v stored as %+v, %v: a node's write and its echo differ", e, back, err)
	}
}
