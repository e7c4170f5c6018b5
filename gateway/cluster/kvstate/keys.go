package kvstate

import (
	"encoding/base64"
	"errors"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// errCorrupt marks a key or value this package cannot decode. Such entries
// are skipped and counted, never applied.
var errCorrupt = errors.New("kvstate: corrupt entry")

// bucketName is what JetStream accepts as a KV bucket name.
var bucketName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// nodeName is a node id usable as one KV key token (no dots).
var nodeName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// emptyPart stands for the empty string in a key: base64 would give an
// empty token, which KV keys do not allow, and RawURL never produces '='.
const emptyPart = "="

// encodePart turns any string into one KV key token ([-_A-Za-z0-9] or
// emptyPart), so tags and users may hold dots, spaces, '*', '>' or any
// Unicode.
func encodePart(s string) string {
	if s == "" {
		return emptyPart
	}
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

func decodePart(p string) (string, error) {
	if p == emptyPart {
		return "", nil
	}
	if p == "" {
		return "", errCorrupt
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(p)
	if err != nil {
		return "", errCorrupt
	}
	return string(b), nil
}

// watchKey is the key of user's watch on tag: "<tag>.<user>", both encoded.
func watchKey(tag, user string) string { return encodePart(tag) + "." + encodePart(user) }

func parseWatchKey(k string) (tag, user string, err error) {
	a, b, ok := strings.Cut(k, ".")
	if !ok || strings.Contains(b, ".") {
		return "", "", errCorrupt
	}
	if tag, err = decodePart(a); err != nil {
		return "", "", err
	}
	if user, err = decodePart(b); err != nil {
		return "", "", err
	}
	return tag, user, nil
}

// watchEntry is one watch: it counts until expires and stays known (for
// client extension) for one ttl after that.
type watchEntry struct {
	expires time.Time
	ttl     time.Duration
}

// encodeWatch is the value of a watch key: "<expires unix ms>:<ttl ms>",
// text so that `nats kv get` shows something readable.
func encodeWatch(e watchEntry) []byte {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, e.expires.UnixMilli(), 10)
	b = append(b, ':')
	return strconv.AppendInt(b, e.ttl.Milliseconds(), 10)
}

func decodeWatch(v []byte) (watchEntry, error) {
	a, b, ok := strings.Cut(string(v), ":")
	if !ok {
		return watchEntry{}, errCorrupt
	}
	exp, err1 := strconv.ParseInt(a, 10, 64)
	ttl, err2 := strconv.ParseInt(b, 10, 64)
	if err1 != nil || err2 != nil || ttl <= 0 || exp < 0 || ttl > int64(maxDuration/time.Millisecond) {
		return watchEntry{}, errCorrupt
	}
	return watchEntry{expires: time.UnixMilli(exp), ttl: time.Duration(ttl) * time.Millisecond}, nil
}

// newWatch builds the entry for a watch renewed at now, with the same
// millisecond precision the stored value has, so that a node's own write
// and the watcher's echo of it are equal.
func newWatch(now time.Time, ttl time.Duration) watchEntry {
	ttl = ttl.Truncate(time.Millisecond)
	return watchEntry{expires: time.UnixMilli(now.Add(ttl).UnixMilli()), ttl: ttl}
}

// maxDuration bounds decoded TTLs so that arithmetic on them cannot
// overflow.
const maxDuration = 100 * 365 * 24 * time.Hour

// Presence keys: "n.<node>" heartbeat and "u.<node>.<user>" for each user
// the node has online.
const (
	heartbeatPrefix = "n."
	userPrefix      = "u."
)

func heartbeatKey(node string) string { return heartbeatPrefix + node }

func userKey(node, user string) string { return userPrefix + node + "." + encodePart(user) }

// presenceKey is a parsed presence key; user is set for user keys only.
type presenceKey struct {
	node, user string
	isUser     bool
}

func parsePresenceKey(k string) (presenceKey, error) {
	switch {
	case strings.HasPrefix(k, heartbeatPrefix):
		n := k[len(heartbeatPrefix):]
		if !nodeName.MatchString(n) {
			return presenceKey{}, errCorrupt
		}
		return presenceKey{node: n}, nil
	case strings.HasPrefix(k, userPrefix):
		n, u, ok := strings.Cut(k[len(userPrefix):], ".")
		if !ok || !nodeName.MatchString(n) || strings.Contains(u, ".") {
			return presenceKey{}, errCorrupt
		}
		user, err := decodePart(u)
		if err != nil {
			return presenceKey{}, err
		}
		return presenceKey{node: n, user: user, isUser: true}, nil
	}
	return presenceKey{}, errCorrupt
}

func encodeBeat(t time.Time) []byte { return strconv.AppendInt(nil, t.UnixMilli(), 10) }

func decodeBeat(v []byte) (time.Time, error) {
	ms, err := strconv.ParseInt(string(v), 10, 64)
	if err != nil || ms < 0 {
		return time.Time{}, errCorrupt
	}
	return time.UnixMilli(ms), nil
}
