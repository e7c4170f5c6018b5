package jsqueue

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/queue"
)

// scan calls fn for each message of stream on subject filter from sequence
// from on, one direct-get request per message, until fn returns false or
// the stream has no more.
func scan(ctx context.Context, s jetstream.Stream, filter string, from uint64, fn func(*jetstream.RawStreamMsg) (bool, error)) error {
	seq := max(from, 1)
	for {
		m, err := s.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(filter))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			return nil
		}
		if err != nil {
			return err
		}
		more, err := fn(m)
		if err != nil || !more {
			return err
		}
		seq = m.Sequence + 1
	}
}

// ListDead returns up to limit dead letters (default 100, at most 1000),
// oldest death first, starting after cursor ("" = from the start). The
// cursor is a stream sequence, so it stays valid while letters are added
// or removed. next is "" when the page was not full.
func (q *Queue) ListDead(ctx context.Context, cursor string, limit int) (jobs []queue.DeadJob, next string, err error) {
	if q.isClosed() {
		return nil, "", queue.ErrClosed
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var from uint64
	if cursor != "" {
		from, err = strconv.ParseUint(cursor, 10, 64)
		if err != nil {
			return nil, "", fmt.Errorf("jsqueue: dead-letter cursor %q: %w", cursor, queue.ErrInvalid)
		}
	}
	var last uint64
	err = scan(ctx, q.dead, q.deadPrefix+">", from+1, func(m *jetstream.RawStreamMsg) (bool, error) {
		d, err := decodeDead(m.Data)
		if err != nil {
			q.opts.Logger.Warn("jsqueue: unreadable dead letter", "seq", m.Sequence, "err", err)
			return true, nil
		}
		jobs = append(jobs, d)
		last = m.Sequence
		return len(jobs) < limit, nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("jsqueue: list dead letters: %w", err)
	}
	if len(jobs) == limit {
		next = strconv.FormatUint(last, 10)
	}
	return jobs, next, nil
}

// deadLetters calls fn with the dead letters named by ids, or all of them.
func (q *Queue) deadLetters(ctx context.Context, ids []string, all bool, fn func(*jetstream.RawStreamMsg) error) error {
	if all {
		return scan(ctx, q.dead, q.deadPrefix+">", 1, func(m *jetstream.RawStreamMsg) (bool, error) {
			return true, fn(m)
		})
	}
	for _, id := range ids {
		m, err := q.dead.GetLastMsgForSubject(ctx, q.deadPrefix+token(id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
	}
	return nil
}

// RetryDead puts dead letters (ids, or all of them) back in the queue, due
// now with Attempts reset, and returns how many it moved. The job is
// stored before its letter is deleted (a crash in between leaves both).
// Unknown ids are skipped. A job past its ExpiresAt dies again at its next
// lease.
func (q *Queue) RetryDead(ctx context.Context, ids []string, all bool) (int, error) {
	if q.isClosed() {
		return 0, queue.ErrClosed
	}
	n := 0
	err := q.deadLetters(ctx, ids, all, func(m *jetstream.RawStreamMsg) error {
		d, err := decodeDead(m.Data)
		if err != nil {
			return err
		}
		j := d.Job
		now := q.opts.Now()
		j.Attempts, j.NextAttempt, j.LastError = 0, now, ""
		data, err := encodeJob(&j)
		if err != nil {
			return err
		}
		// The Msg-Id names this letter, so that retrying it twice in a
		// row (a crash before the delete) stores the job once.
		msg := &nats.Msg{Subject: q.jobSubject(&j), Data: data}
		if _, err := q.js.PublishMsg(ctx, msg, jetstream.WithMsgID(fmt.Sprintf("dead:%s:%d", token(j.ID), m.Sequence))); err != nil {
			return err
		}
		if err := q.putStatus(ctx, newStatus(&j, queue.StateQueued, "", now)); err != nil {
			return err
		}
		if err := q.dead.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
			return err
		}
		n++
		return nil
	})
	if n > 0 {
		q.notify()
	}
	if err != nil {
		return n, fmt.Errorf("jsqueue: retry dead letters: %w", err)
	}
	return n, nil
}

// DeleteDead deletes dead letters (ids, or all of them) and returns how
// many it deleted. Unknown ids are skipped.
func (q *Queue) DeleteDead(ctx context.Context, ids []string, all bool) (int, error) {
	if q.isClosed() {
		return 0, queue.ErrClosed
	}
	if all {
		info, err := q.dead.Info(ctx)
		if err != nil {
			return 0, fmt.Errorf("jsqueue: delete dead letters: %w", err)
		}
		// Purge up to the last sequence seen, so letters added meanwhile stay.
		if err := q.dead.Purge(ctx, jetstream.WithPurgeSequence(info.State.LastSeq+1)); err != nil {
			return 0, fmt.Errorf("jsqueue: delete dead letters: %w", err)
		}
		return int(info.State.Msgs), nil
	}
	n := 0
	for _, id := range ids {
		m, err := q.dead.GetLastMsgForSubject(ctx, q.deadPrefix+token(id))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return n, fmt.Errorf("jsqueue: delete dead letter %s: %w", id, err)
		}
		if err := q.dead.DeleteMsg(ctx, m.Sequence); err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			return n, fmt.Errorf("jsqueue: delete dead letter %s: %w", id, err)
		}
		n++
	}
	return n, nil
}
