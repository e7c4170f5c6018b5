package queue

import (
	"context"
	"encoding/hex"
	"fmt"

	"go.etcd.io/bbolt"
)

// ListDead returns up to limit dead letters (default 100, at most 1000),
// oldest death first, starting after cursor ("" = from the start). next
// is the cursor for the following page, "" when there is none. A cursor
// stays valid while letters are added or removed.
func (q *Queue) ListDead(ctx context.Context, cursor string, limit int) (jobs []DeadJob, next string, err error) {
	if q.isClosed() {
		return nil, "", ErrClosed
	}
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	var after []byte
	if cursor != "" {
		if after, err = hex.DecodeString(cursor); err != nil || len(after) < 8 {
			return nil, "", fmt.Errorf("queue: dead cursor %q: %w", cursor, ErrInvalid)
		}
	}
	err = q.db.View(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		cache := make(map[string][]byte)
		c := b.deadTime.Cursor()
		k, _ := c.First()
		if after != nil {
			k, _ = c.Seek(after)
			if k != nil && string(k) == string(after) {
				k, _ = c.Next()
			}
		}
		var last []byte
		for ; k != nil; k, _ = c.Next() {
			if len(jobs) == limit {
				next = hex.EncodeToString(last)
				return nil
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			id := string(k[8:])
			v := b.dead.Get(k[8:])
			if v == nil {
				continue
			}
			diedAt, reason, jrec, err := decodeDead(v)
			if err != nil {
				return fmt.Errorf("dead %s: %w", id, err)
			}
			j, err := decodeJob(id, jrec, true)
			if err != nil {
				return fmt.Errorf("dead %s: %w", id, err)
			}
			loadPayload(b, j, cache)
			jobs = append(jobs, DeadJob{Job: j.Job, Reason: reason, DiedAt: diedAt})
			last = k
		}
		return nil
	})
	if err != nil {
		return nil, "", fmt.Errorf("queue: list dead: %w", err)
	}
	return jobs, next, nil
}

// deadIDs returns ids, or every dead letter's id when all is set.
func deadIDs(b *buckets, ids []string, all bool) []string {
	if !all {
		return ids
	}
	var out []string
	c := b.dead.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		out = append(out, string(k))
	}
	return out
}

// RetryDead moves dead letters (ids, or all of them) back to the queue,
// due now with Attempts reset, and returns how many it moved. Unknown ids
// are skipped. A job past its ExpiresAt dies again ("expired") at its
// next lease: retrying does not extend a notification's life.
func (q *Queue) RetryDead(ctx context.Context, ids []string, all bool) (int, error) {
	var n int
	err := q.do(ctx, q.deadWrites(ids, all), func(tx *bbolt.Tx, b *buckets, fx *effects) error {
		n = 0
		now := q.opts.Now()
		for _, id := range deadIDs(b, ids, all) {
			v := b.dead.Get([]byte(id))
			if v == nil {
				continue
			}
			_, _, jrec, err := decodeDead(v)
			if err != nil {
				return fmt.Errorf("dead %s: %w", id, err)
			}
			j, err := decodeJob(id, jrec, true)
			if err != nil {
				return fmt.Errorf("dead %s: %w", id, err)
			}
			if err := q.deleteDeadRecord(b, fx, id, false); err != nil {
				return err
			}
			j.Attempts = 0
			j.NextAttempt = now
			pj := preparedJob{job: j.Job, rec: encodeJob(nil, &j.Job, j.payloadRef)}
			if err := q.insertJob(b, fx, &pj, now); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

// DeleteDead deletes dead letters (ids, or all of them) and returns how
// many it deleted. Unknown ids are skipped.
func (q *Queue) DeleteDead(ctx context.Context, ids []string, all bool) (int, error) {
	var n int
	err := q.do(ctx, q.deadWrites(ids, all), func(tx *bbolt.Tx, b *buckets, fx *effects) error {
		n = 0
		for _, id := range deadIDs(b, ids, all) {
			if b.dead.Get([]byte(id)) == nil {
				continue
			}
			if err := q.deleteDeadRecord(b, fx, id, true); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	return n, err
}

func (q *Queue) deadWrites(ids []string, all bool) int {
	if !all {
		return len(ids)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.dead
}
