package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

const (
	// maxKeyField bounds the strings that end up inside bbolt keys.
	maxKeyField = 1024
	// minSharedPayload is the size from which a payload repeated by the
	// jobs of one call is stored once: below it the reference and its
	// count cost about as much as the copies.
	minSharedPayload = 128
)

func validateJob(j *Job) error {
	if j == nil {
		return fmt.Errorf("nil job: %w", ErrInvalid)
	}
	for _, f := range [...]struct{ name, v string }{
		{"ID", j.ID}, {"NotificationID", j.NotificationID}, {"User", j.User},
		{"Tag", j.Tag}, {"SubTag", j.SubTag}, {"DeviceID", j.DeviceID},
	} {
		if len(f.v) > maxKeyField {
			return fmt.Errorf("%s longer than %d bytes: %w", f.name, maxKeyField, ErrInvalid)
		}
	}
	if j.Attempts < 0 {
		return fmt.Errorf("Attempts negative: %w", ErrInvalid)
	}
	return nil
}

// prepare validates jobs, fills their ID, CreatedAt and NextAttempt, and
// encodes them in the caller's goroutine (so encoding runs in parallel and
// the committer only copies bytes). Runs of equal large payloads, as in a
// fan-out of one notification to many devices, are stored once.
func (q *Queue) prepare(jobs []*Job) ([]preparedJob, []*sharedPayload, error) {
	for i, j := range jobs {
		if err := validateJob(j); err != nil {
			return nil, nil, fmt.Errorf("queue: jobs[%d]: %w", i, err)
		}
	}
	now := q.opts.Now()
	out := make([]preparedJob, len(jobs))
	var shared []*sharedPayload
	for i, j := range jobs {
		if j.ID == "" {
			j.ID = q.ids.Next()
			out[i].fresh = true
		}
		if j.CreatedAt.IsZero() {
			j.CreatedAt = now
		}
		if j.NextAttempt.IsZero() {
			j.NextAttempt = now
			if j.NotBefore.After(now) {
				j.NextAttempt = j.NotBefore
			}
		}
		pj := &out[i]
		pj.job = *j
		pj.job.Payload = nil
		if len(j.Payload) >= minSharedPayload {
			switch {
			case i > 0 && out[i-1].shared != nil && bytes.Equal(out[i-1].shared.data, j.Payload):
				pj.shared = out[i-1].shared
				pj.shared.refs++
			case i+1 < len(jobs) && bytes.Equal(jobs[i+1].Payload, j.Payload):
				pj.shared = &sharedPayload{ref: q.ids.Next(), data: bytes.Clone(j.Payload), refs: 1}
				shared = append(shared, pj.shared)
			}
		}
		if pj.shared != nil {
			pj.rec = encodeJob(make([]byte, 0, 160), j, pj.shared.ref)
		} else {
			pj.rec = encodeJob(make([]byte, 0, 160+len(j.Payload)), j, "")
		}
	}
	return out, shared, nil
}

// Enqueue stores jobs and returns once they are durably committed (fsync).
// Concurrent callers share one transaction. Each job gets an ID (when
// empty), CreatedAt (when zero) and NextAttempt (when zero: NotBefore if
// later than now, else now); the caller's structs are updated. A job with
// a User and SubTag replaces (collapses) the still-queued, not leased jobs
// of earlier calls with the same User and SubTag, whose state becomes
// "collapsed". If ctx ends before the commit, Enqueue returns ctx's error
// and the jobs may or may not be stored.
func (q *Queue) Enqueue(ctx context.Context, jobs ...*Job) error {
	_, _, err := q.Submit(ctx, Submission{Jobs: jobs})
	return err
}

// Submit is Enqueue with idempotency. When s.IdempotencyKey was stored
// within IdempotencyWindow, Submit stores nothing and returns the stored
// result with duplicate=true. Otherwise it stores the jobs and the key with
// s.Result in one transaction and returns s.Result. Two concurrent Submits
// with one key store the jobs once.
func (q *Queue) Submit(ctx context.Context, s Submission) (result []byte, duplicate bool, err error) {
	if len(s.IdempotencyKey) > maxKeyField {
		return nil, false, fmt.Errorf("queue: IdempotencyKey longer than %d bytes: %w", maxKeyField, ErrInvalid)
	}
	if len(s.Jobs) == 0 && s.IdempotencyKey == "" {
		return s.Result, false, nil
	}
	if q.isClosed() {
		return nil, false, ErrClosed
	}
	prepared, shared, err := q.prepare(s.Jobs)
	if err != nil {
		return nil, false, err
	}
	key := []byte(s.IdempotencyKey)
	var stored []byte
	err = q.do(ctx, len(prepared)+1, func(tx *bbolt.Tx, b *buckets, fx *effects) error {
		stored, duplicate = nil, false
		now := q.opts.Now()
		if len(key) > 0 {
			if v := b.idem.Get(key); len(v) >= 8 {
				at := int64(binary.BigEndian.Uint64(v))
				if now.UnixNano()-at < int64(q.opts.IdempotencyWindow) {
					stored, duplicate = bytes.Clone(v[8:]), true
					return nil
				}
				if err := b.idemTime.Delete(timeKey(fromNanos(at), s.IdempotencyKey)); err != nil {
					return err
				}
			}
		}
		if err := q.collapse(b, fx, prepared, now); err != nil {
			return err
		}
		for _, p := range shared {
			if err := putPayload(b, p); err != nil {
				return err
			}
		}
		for i := range prepared {
			if err := q.insertJob(b, fx, &prepared[i], now); err != nil {
				return err
			}
		}
		if len(key) == 0 {
			return nil
		}
		v := binary.BigEndian.AppendUint64(make([]byte, 0, 8+len(s.Result)), uint64(max(now.UnixNano(), 0)))
		if err := b.idem.Put(key, append(v, s.Result...)); err != nil {
			return err
		}
		return b.idemTime.Put(timeKey(now, s.IdempotencyKey), nil)
	})
	if err != nil {
		return nil, false, err
	}
	if duplicate {
		return stored, true, nil
	}
	return s.Result, false, nil
}

// collapse removes the queued, not leased jobs that the new jobs replace:
// same User and SubTag, stored by an earlier call. It runs before this
// call's jobs are inserted, so they never collapse each other (one
// notification to three devices is three jobs).
func (q *Queue) collapse(b *buckets, fx *effects, jobs []preparedJob, now time.Time) error {
	type userSub struct{ user, sub string }
	var seen map[userSub]bool
	for i := range jobs {
		j := &jobs[i].job
		if j.User == "" || j.SubTag == "" {
			continue
		}
		us := userSub{j.User, j.SubTag}
		if seen[us] {
			continue
		}
		if seen == nil {
			seen = make(map[userSub]bool)
		}
		seen[us] = true
		ids := scanIndex(b.subTag, lpKey(j.SubTag, j.User))
		for _, id := range ids {
			if _, err := q.removeQueued(b, fx, id, "", StateCollapsed, now); err != nil {
				return err
			}
		}
	}
	return nil
}

// scanIndex returns the ids of the tag or sub tag index entries under prefix.
func scanIndex(idx *bbolt.Bucket, prefix []byte) []string {
	var ids []string
	c := idx.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		if id, ok := indexKeyID(k); ok {
			ids = append(ids, id)
		}
	}
	return ids
}

// removeQueued removes a job that is not leased (cancel, collapse) and
// records state for it. A non-empty tag must also match. It reports
// whether the job was removed.
func (q *Queue) removeQueued(b *buckets, fx *effects, id, tag, state string, now time.Time) (bool, error) {
	v := b.jobs.Get([]byte(id))
	if v == nil || !q.claim(fx, id) {
		return false, nil
	}
	j, err := decodeJob(id, v, false)
	if err != nil {
		return false, fmt.Errorf("job %s: %w", id, err)
	}
	if tag != "" && j.Tag != tag {
		return false, nil
	}
	if err := q.removeJob(b, fx, j, true); err != nil {
		return false, err
	}
	return true, q.setStatus(b, &j.Job, state, "", now)
}

// Cancel removes the queued jobs that match f and are not leased (jobs
// being sent are left alone), records state "cancelled" for them and
// returns how many it removed. Users empty means every user.
func (q *Queue) Cancel(ctx context.Context, f CancelFilter) (int, error) {
	if f.Tag == "" && f.SubTag == "" {
		return 0, fmt.Errorf("queue: cancel: Tag or SubTag required: %w", ErrInvalid)
	}
	idx, name, tagCheck := bucketTag, f.Tag, ""
	if f.SubTag != "" {
		idx, name, tagCheck = bucketSubTag, f.SubTag, f.Tag
	}
	prefixes := [][]byte{lpKey(name)}
	if len(f.Users) > 0 {
		prefixes = prefixes[:0]
		for _, u := range f.Users {
			prefixes = append(prefixes, lpKey(name, u))
		}
	}
	var n int
	err := q.do(ctx, 1, func(tx *bbolt.Tx, b *buckets, fx *effects) error {
		n = 0
		now := q.opts.Now()
		for _, p := range prefixes {
			for _, id := range scanIndex(tx.Bucket(idx), p) {
				ok, err := q.removeQueued(b, fx, id, tagCheck, StateCancelled, now)
				if err != nil {
					return err
				}
				if ok {
					n++
				}
			}
		}
		return nil
	})
	return n, err
}
