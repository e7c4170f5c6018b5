package cluster

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
)

// codecVersion is the first byte of every encoded event. A node that reads
// a version it does not know skips the entry (and counts it) rather than
// guessing: nodes of different versions may share a stream during an
// upgrade.
const codecVersion = 1

// errCorrupt is returned for an entry that does not decode.
var errCorrupt = errors.New("cluster: malformed event entry")

// maxChannels bounds the channel count a decoder accepts, so that a
// corrupt length cannot make it allocate without bound.
const maxChannels = 1 << 20

// MetaCodec carries hub.Event.Meta between nodes: the formats that attach
// something to their events (web/bitrix) provide one. EncodeMeta reports
// false for a Meta it does not know; such a Meta is not carried (the
// other nodes render the event from its plain fields).
type MetaCodec interface {
	EncodeMeta(meta any) ([]byte, bool)
	DecodeMeta(b []byte) (any, error)
}

// appendEvent encodes channels and the payload fields of ev with its
// creation time: version, channels, module, command, params, extra,
// expiry (ns), created (unix ns), meta (empty for none).
func appendEvent(dst []byte, channels []string, ev *hub.Event, created time.Time, meta []byte) []byte {
	dst = append(dst, codecVersion)
	dst = binary.AppendUvarint(dst, uint64(len(channels)))
	for _, c := range channels {
		dst = appendBytes(dst, c)
	}
	dst = appendBytes(dst, ev.ModuleID)
	dst = appendBytes(dst, ev.Command)
	dst = appendBytes(dst, string(ev.Params))
	dst = appendBytes(dst, string(ev.Extra))
	dst = binary.AppendVarint(dst, int64(ev.Expiry))
	dst = binary.AppendVarint(dst, created.UnixNano())
	return appendBytes(dst, string(meta))
}

func appendBytes(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// decodeEvent is the inverse of appendEvent. The event's byte fields are
// copied out of b (b belongs to the NATS message).
func decodeEvent(b []byte) (channels []string, ev *hub.Event, created time.Time, meta []byte, err error) {
	d := decoder{b: b}
	if v := d.byte(); v != codecVersion {
		return nil, nil, time.Time{}, nil, fmt.Errorf("%w: version %d", errCorrupt, v)
	}
	n := d.uvarint()
	if n > maxChannels || n > uint64(len(b)) {
		return nil, nil, time.Time{}, nil, fmt.Errorf("%w: %d channels", errCorrupt, n)
	}
	channels = make([]string, n)
	for i := range channels {
		channels[i] = string(d.bytes())
	}
	ev = &hub.Event{ModuleID: string(d.bytes()), Command: string(d.bytes())}
	if p := d.bytes(); len(p) > 0 {
		ev.Params = append([]byte(nil), p...)
	}
	if x := d.bytes(); len(x) > 0 {
		ev.Extra = append([]byte(nil), x...)
	}
	ev.Expiry = time.Duration(d.varint())
	created = time.Unix(0, d.varint())
	meta = d.bytes()
	if d.err != nil {
		return nil, nil, time.Time{}, nil, d.err
	}
	if len(d.b) != 0 {
		return nil, nil, time.Time{}, nil, fmt.Errorf("%w: %d trailing bytes", errCorrupt, len(d.b))
	}
	if ev.Expiry < 0 {
		return nil, nil, time.Time{}, nil, fmt.Errorf("%w: negative expiry", errCorrupt)
	}
	if len(meta) == 0 {
		meta = nil
	}
	return channels, ev, created, meta, nil
}

// decoder reads the fields of appendEvent; the first error sticks.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errCorrupt
	}
	d.b = nil
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail()
		return 0
	}
	v := d.b[0]
	d.b = d.b[1:]
	return v
}

// Varints must be minimal (as appendEvent writes them), so that an entry
// has one encoding.

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 || n != uvarintLen(v) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) varint() int64 {
	v, n := binary.Varint(d.b)
	if n <= 0 || n != varintLen(v) {
		d.fail()
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes() []byte {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.fail()
		return nil
	}
	v := d.b[:n]
	d.b = d.b[n:]
	return v
}

func uvarintLen(v uint64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutUvarint(b[:], v)
}

func varintLen(v int64) int {
	var b [binary.MaxVarintLen64]byte
	return binary.PutVarint(b[:], v)
}
