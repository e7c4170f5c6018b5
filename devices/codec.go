package devices

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Storage layout. All buckets are top-level and prefixed "devices." so the
// registry can share a bbolt file with other packages.
//
//	devices.records  user 0x00 id        -> record (see encodeRecord)
//	devices.ids      id                  -> user
//	devices.tokens   platform 0x00 token -> id   (tokens and VoIP tokens)
//	devices.stale    updated(8) id       -> empty (purge order)
//	devices.meta     "version"           -> schema version
//
// Records are keyed by user first so that fan-out to many users is one
// prefix scan per user with no second lookup. NUL cannot occur in users,
// ids, platforms or tokens (Validate rejects control characters), which
// makes the composite keys unambiguous.
const (
	bucketRecords = "devices.records"
	bucketIDs     = "devices.ids"
	bucketTokens  = "devices.tokens"
	bucketStale   = "devices.stale"
	bucketMeta    = "devices.meta"
	keyVersion    = "version"
)

// schemaVersion is bumped when the layout above changes incompatibly.
const schemaVersion = 1

// recordVersion is the first byte of every record.
const recordVersion = 1

const flagSandbox = 1 << 0

// errCorrupt marks a record the registry cannot decode. It is wrapped, not
// exported: a corrupt file is an operator problem, not a caller branch.
var errCorrupt = errors.New("devices: corrupt record")

func recordKey(user, id string) []byte {
	k := make([]byte, 0, len(user)+1+len(id))
	k = append(k, user...)
	k = append(k, 0)
	return append(k, id...)
}

func userPrefix(user string) []byte {
	k := make([]byte, 0, len(user)+1)
	k = append(k, user...)
	return append(k, 0)
}

func tokenKey(platformName, token string) []byte {
	k := make([]byte, 0, len(platformName)+1+len(token))
	k = append(k, platformName...)
	k = append(k, 0)
	return append(k, token...)
}

// staleKey orders devices by Updated. The sign bit is flipped so that the
// big-endian bytes sort like the signed nanoseconds.
func staleKey(updated time.Time, id string) []byte {
	k := make([]byte, 8, 8+len(id))
	binary.BigEndian.PutUint64(k, uint64(updated.UnixNano())^(1<<63))
	return append(k, id...)
}

func staleKeyTime(k []byte) time.Time {
	return time.Unix(0, int64(binary.BigEndian.Uint64(k)^(1<<63)))
}

// encodeRecord writes the fields that are not already in the record key:
//
//	version(1) flags(1) created(8) updated(8)
//	then uvarint-length-prefixed platform, token, voip_token, app_id,
//	locale, timezone, name.
//
// A binary record rather than JSON because ListByUsers decodes every
// device of every recipient on the fan-out path.
func encodeRecord(d Device) []byte {
	fields := [...]string{d.Platform, d.Token, d.VoIPToken, d.AppID, d.Locale, d.Timezone, d.Name}
	n := 18
	for _, f := range fields {
		n += binary.MaxVarintLen32 + len(f)
	}
	b := make([]byte, 2, n)
	b[0] = recordVersion
	if d.Sandbox {
		b[1] |= flagSandbox
	}
	b = binary.BigEndian.AppendUint64(b, uint64(d.Created.UnixNano()))
	b = binary.BigEndian.AppendUint64(b, uint64(d.Updated.UnixNano()))
	for _, f := range fields {
		b = binary.AppendUvarint(b, uint64(len(f)))
		b = append(b, f...)
	}
	return b
}

// decodeRecord rebuilds a device from its record key and value. All string
// fields share one allocation; user, when non-empty, is used instead of the
// copy in the key (ListByUsers already holds it).
func decodeRecord(key, val []byte, user string) (Device, error) {
	sep := -1
	for i, c := range key {
		if c == 0 {
			sep = i
			break
		}
	}
	if sep < 0 {
		return Device{}, fmt.Errorf("%w: key without separator", errCorrupt)
	}
	if len(val) < 18 || val[0] != recordVersion {
		return Device{}, fmt.Errorf("%w: bad header", errCorrupt)
	}
	// One string holds the key and the variable part of the value; every
	// field is a substring of it.
	var sb strings.Builder
	sb.Grow(len(key) + len(val) - 18)
	sb.Write(key)
	sb.Write(val[18:])
	all := sb.String()
	var d Device
	if user != "" {
		d.User = user
	} else {
		d.User = all[:sep]
	}
	d.ID = all[sep+1 : len(key)]
	d.Sandbox = val[1]&flagSandbox != 0
	d.Created = time.Unix(0, int64(binary.BigEndian.Uint64(val[2:10]))).UTC()
	d.Updated = time.Unix(0, int64(binary.BigEndian.Uint64(val[10:18]))).UTC()
	rest, off := val[18:], len(key)
	for _, f := range [...]*string{&d.Platform, &d.Token, &d.VoIPToken, &d.AppID, &d.Locale, &d.Timezone, &d.Name} {
		n, w := binary.Uvarint(rest)
		// The writer emits minimal varints only: a longer form is damage,
		// not a record of ours (and would not re-encode to these bytes).
		if w <= 0 || n > uint64(len(rest)-w) || w != uvarintLen(n) {
			return Device{}, fmt.Errorf("%w: bad field length", errCorrupt)
		}
		off += w
		*f = all[off : off+int(n)]
		off += int(n)
		rest = rest[w+int(n):]
	}
	if len(rest) != 0 {
		return Device{}, fmt.Errorf("%w: trailing bytes", errCorrupt)
	}
	return d, nil
}

// uvarintLen is the length of the minimal uvarint encoding of n.
func uvarintLen(n uint64) int {
	w := 1
	for n >= 0x80 {
		n >>= 7
		w++
	}
	return w
}
