package queue

import (
	"context"
	"encoding/binary"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Prune is what the background loop runs every PruneInterval: it deletes
// dead letters older than DeadRetention and then the oldest beyond
// DeadMax, status records of finished jobs older than StatusRetention,
// and idempotency keys older than IdempotencyWindow. It works in
// transactions of at most MaxBatch deletions so that writers are not held
// up behind one huge commit.
func (q *Queue) Prune(ctx context.Context) error {
	steps := []struct {
		name string
		fn   func(b *buckets, fx *effects, now time.Time, limit int) (int, error)
	}{
		{"dead letters by age", q.pruneDeadAge},
		{"dead letters by count", q.pruneDeadCount},
		{"status records", q.pruneStatus},
		{"idempotency keys", q.pruneIdem},
	}
	for _, s := range steps {
		total := 0
		for {
			var n int
			limit := q.opts.MaxBatch
			err := q.do(ctx, limit, func(tx *bbolt.Tx, b *buckets, fx *effects) error {
				var err error
				n, err = s.fn(b, fx, q.opts.Now(), limit)
				return err
			})
			if err != nil {
				return fmt.Errorf("queue: prune %s: %w", s.name, err)
			}
			total += n
			if n < limit {
				break
			}
		}
		if total > 0 {
			q.log.Info("pruned", "what", s.name, "count", total)
		}
	}
	return nil
}

// expiredKeys returns up to limit keys of a time-keyed bucket whose time
// is at or before cutoff, with their values.
func expiredKeys(bk *bbolt.Bucket, cutoff time.Time, limit int) (keys, vals [][]byte) {
	cut := nanos(cutoff)
	c := bk.Cursor()
	for k, v := c.First(); k != nil && len(keys) < limit && keyTime(k) <= cut; k, v = c.Next() {
		// Copied: the caller deletes while holding them.
		keys = append(keys, append([]byte(nil), k...))
		vals = append(vals, append([]byte(nil), v...))
	}
	return keys, vals
}

func (q *Queue) pruneDeadAge(b *buckets, fx *effects, now time.Time, limit int) (int, error) {
	keys, _ := expiredKeys(b.deadTime, now.Add(-q.opts.DeadRetention), limit)
	for _, k := range keys {
		if err := q.deleteDeadRecord(b, fx, string(k[8:]), true); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func (q *Queue) pruneDeadCount(b *buckets, fx *effects, now time.Time, limit int) (int, error) {
	q.mu.Lock()
	excess := q.dead - q.opts.DeadMax
	q.mu.Unlock()
	if excess <= 0 {
		return 0, nil
	}
	var ids []string
	c := b.deadTime.Cursor()
	for k, _ := c.First(); k != nil && len(ids) < min(excess, limit); k, _ = c.Next() {
		ids = append(ids, string(k[8:]))
	}
	for _, id := range ids {
		if err := q.deleteDeadRecord(b, fx, id, true); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

func (q *Queue) pruneStatus(b *buckets, fx *effects, now time.Time, limit int) (int, error) {
	cutoff := now.Add(-q.opts.StatusRetention)
	keys, skeys := expiredKeys(b.statusTime, cutoff, limit)
	for i, k := range keys {
		// The record may have moved on since (a dead job retried): delete
		// it only if it is still finished and old.
		if v := b.status.Get(skeys[i]); v != nil {
			if rec, err := decodeStatus(v); err != nil || (isTerminal(rec.State) && !rec.UpdatedAt.After(cutoff)) {
				if err := b.status.Delete(skeys[i]); err != nil {
					return 0, err
				}
			}
		}
		if err := b.statusTime.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}

func (q *Queue) pruneIdem(b *buckets, fx *effects, now time.Time, limit int) (int, error) {
	keys, _ := expiredKeys(b.idemTime, now.Add(-q.opts.IdempotencyWindow), limit)
	for _, k := range keys {
		key := k[8:]
		// Only if the key was not stored again after this time entry.
		if v := b.idem.Get(key); len(v) >= 8 && binary.BigEndian.Uint64(v) == binary.BigEndian.Uint64(k) {
			if err := b.idem.Delete(key); err != nil {
				return 0, err
			}
		}
		if err := b.idemTime.Delete(k); err != nil {
			return 0, err
		}
	}
	return len(keys), nil
}
