package hub

import (
	"encoding/json"
	"sync"
	"time"
)

// Event is one message to deliver. The caller fills the payload fields;
// Publish sets ID and Created. An Event must not be modified after Publish,
// nor published twice: recipients share it and its encodings.
type Event struct {
	// ID is the mid, assigned by Publish.
	ID string
	// Created is the hub clock at Publish.
	Created time.Time
	// Expiry is how long the event stays in history; 0 means live only
	// (delivered to connections and pollers present now, never stored).
	Expiry time.Duration
	// ModuleID and Command identify the event for the client
	// (onPullEvent(module_id, command, params, extra)).
	ModuleID string
	Command  string
	// Params is any JSON value (nil encodes as null).
	Params json.RawMessage
	// Extra is a JSON object or nil (omitted).
	Extra json.RawMessage
	// Meta is opaque to the hub, for formats that need more than the fields
	// above (Bitrix sender, raw body, ...).
	Meta any

	seq     uint64 // counter part of ID; 0 until published
	expires int64  // unix nanoseconds after which the event is not served
	size    int    // approximate bytes held by the event

	encMu sync.Mutex
	encs  []*encoding
}

// encoding is one cached rendering of an event.
type encoding struct {
	format, variant string
	once            sync.Once
	b               []byte
	err             error
}

// eventOverhead approximates the struct and bookkeeping bytes of an event.
const eventOverhead = 256

// computeSize sets ev.size from its payload.
func (ev *Event) computeSize() {
	ev.size = eventOverhead + len(ev.ID) + len(ev.ModuleID) + len(ev.Command) + len(ev.Params) + len(ev.Extra)
}

// expired reports whether ev is past its expiry at now (unix nanoseconds).
func (ev *Event) expired(now int64) bool { return now >= ev.expires }

// Encoded returns ev rendered by f for channel, encoding it at most once per
// (format name, variant) however many recipients ask.
func (ev *Event) Encoded(f Format, channel string) ([]byte, error) {
	name, variant := f.Name(), f.Variant(channel)
	ev.encMu.Lock()
	var e *encoding
	for _, c := range ev.encs {
		if c.format == name && c.variant == variant {
			e = c
			break
		}
	}
	if e == nil {
		e = &encoding{format: name, variant: variant}
		ev.encs = append(ev.encs, e)
	}
	ev.encMu.Unlock()
	e.once.Do(func() { e.b, e.err = f.Encode(ev, channel) })
	return e.b, e.err
}
