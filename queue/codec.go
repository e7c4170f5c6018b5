package queue

import (
	"encoding/binary"
	"errors"
	"time"
)

// Records are encoded by hand rather than with encoding/json or gob: the
// job codec sits on the ingest hot path (one encode per job per write) and
// a flat varint layout is several times cheaper and smaller. Each record
// starts with a version byte so that the layout can evolve.

const (
	// jobVersion 2 added Origin after LastError; version 1 records (no
	// Origin) are still read.
	jobVersion    = 2
	jobVersion1   = 1
	statusVersion = 1
	deadVersion   = 1

	flagSandbox    = 1 << 0
	flagPayloadRef = 1 << 1
)

// errCorrupt means a stored record could not be decoded.
var errCorrupt = errors.New("queue: corrupt record")

// nanos maps the zero time to 0 so that "unset" survives a round trip.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes a record; the first error sticks and later reads return
// zero values, so decoders check r.err once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) fail() {
	if r.err == nil {
		r.err = errCorrupt
	}
	r.b = nil
}

func (r *reader) byte() byte {
	if len(r.b) < 1 {
		r.fail()
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail()
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes() []byte {
	n := r.uvarint()
	if r.err != nil || uint64(len(r.b)) < n {
		r.fail()
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.bytes()) }

// storedJob is a job as kept in the jobs bucket: the payload is either
// inline or a reference to a shared record in the payloads bucket.
type storedJob struct {
	Job
	payloadRef string
}

func encodeJob(b []byte, j *Job, payloadRef string) []byte {
	var flags byte
	if j.Sandbox {
		flags |= flagSandbox
	}
	if payloadRef != "" {
		flags |= flagPayloadRef
	}
	b = append(b, jobVersion, flags)
	b = binary.AppendVarint(b, nanos(j.CreatedAt))
	b = binary.AppendVarint(b, nanos(j.NotBefore))
	b = binary.AppendVarint(b, nanos(j.ExpiresAt))
	b = binary.AppendVarint(b, nanos(j.NextAttempt))
	b = binary.AppendUvarint(b, uint64(j.Attempts))
	for _, s := range [...]string{j.NotificationID, j.User, j.DeviceID, j.Platform, j.AppID, j.Token, j.Tag, j.SubTag, j.LastError, j.Origin} {
		b = appendString(b, s)
	}
	if payloadRef != "" {
		return appendString(b, payloadRef)
	}
	return append(b, j.Payload...)
}

// decodeJob decodes v (which may be memory owned by bbolt: everything is
// copied). withPayload=false skips copying an inline payload, for callers
// that only need the indexes.
func decodeJob(id string, v []byte, withPayload bool) (*storedJob, error) {
	r := reader{b: v}
	version := r.byte()
	if version != jobVersion && version != jobVersion1 {
		return nil, errCorrupt
	}
	flags := r.byte()
	j := &storedJob{}
	j.ID = id
	j.Sandbox = flags&flagSandbox != 0
	j.CreatedAt = fromNanos(r.varint())
	j.NotBefore = fromNanos(r.varint())
	j.ExpiresAt = fromNanos(r.varint())
	j.NextAttempt = fromNanos(r.varint())
	j.Attempts = int(r.uvarint())
	for _, p := range [...]*string{&j.NotificationID, &j.User, &j.DeviceID, &j.Platform, &j.AppID, &j.Token, &j.Tag, &j.SubTag, &j.LastError} {
		*p = r.string()
	}
	if version >= 2 {
		j.Origin = r.string()
	}
	if r.err != nil {
		return nil, r.err
	}
	if flags&flagPayloadRef != 0 {
		j.payloadRef = r.string()
		if r.err != nil {
			return nil, r.err
		}
	} else if withPayload {
		j.Payload = append([]byte(nil), r.b...)
	}
	return j, nil
}

type statusRecord struct {
	State, LastError, DeviceID, User, Platform, AppID string
	Attempts                                          int
	NextAttempt, UpdatedAt                            time.Time
}

func encodeStatus(b []byte, s *statusRecord) []byte {
	b = append(b, statusVersion)
	for _, v := range [...]string{s.State, s.LastError, s.DeviceID, s.User, s.Platform, s.AppID} {
		b = appendString(b, v)
	}
	b = binary.AppendUvarint(b, uint64(s.Attempts))
	b = binary.AppendVarint(b, nanos(s.NextAttempt))
	return binary.AppendVarint(b, nanos(s.UpdatedAt))
}

func decodeStatus(v []byte) (statusRecord, error) {
	r := reader{b: v}
	var s statusRecord
	if r.byte() != statusVersion {
		return s, errCorrupt
	}
	for _, p := range [...]*string{&s.State, &s.LastError, &s.DeviceID, &s.User, &s.Platform, &s.AppID} {
		*p = r.string()
	}
	s.Attempts = int(r.uvarint())
	s.NextAttempt = fromNanos(r.varint())
	s.UpdatedAt = fromNanos(r.varint())
	return s, r.err
}

// A dead record is the dead letter's own fields followed by the job record.
func encodeDead(b []byte, diedAt time.Time, reason string, jobRecord []byte) []byte {
	b = append(b, deadVersion)
	b = binary.AppendVarint(b, nanos(diedAt))
	b = appendString(b, reason)
	return append(b, jobRecord...)
}

func decodeDead(v []byte) (diedAt time.Time, reason string, jobRecord []byte, err error) {
	r := reader{b: v}
	if r.byte() != deadVersion {
		return time.Time{}, "", nil, errCorrupt
	}
	diedAt = fromNanos(r.varint())
	reason = r.string()
	return diedAt, reason, r.b, r.err
}

// isTerminal reports whether a job in this state is gone from the queue
// (its status record may then be pruned after StatusRetention).
func isTerminal(state string) bool {
	switch state {
	case StateQueued, StateSending, StateRetrying:
		return false
	}
	return true
}
