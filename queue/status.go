package queue

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Status returns the state of every job of a notification, in job id
// (creation) order. Jobs currently leased are reported as "sending".
// Records of finished jobs are kept for StatusRetention; ErrNotFound when
// the notification is unknown or its records were pruned.
func (q *Queue) Status(ctx context.Context, notificationID string) ([]JobStatus, error) {
	if q.isClosed() {
		return nil, ErrClosed
	}
	prefix := lpKey(notificationID)
	var out []JobStatus
	err := q.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketStatus).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			rec, err := decodeStatus(v)
			if err != nil {
				return fmt.Errorf("status %q: %w", k, err)
			}
			out = append(out, JobStatus{
				JobID: string(k[len(prefix):]), DeviceID: rec.DeviceID, User: rec.User,
				Platform: rec.Platform, AppID: rec.AppID, State: rec.State,
				LastError: rec.LastError, Attempts: rec.Attempts,
				NextAttempt: rec.NextAttempt, UpdatedAt: rec.UpdatedAt,
			})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: status: %w", err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("queue: notification %q: %w", notificationID, ErrNotFound)
	}
	now := q.opts.Now()
	q.mu.Lock()
	for i := range out {
		if d, ok := q.leases[out[i].JobID]; ok && now.Before(d) && !isTerminal(out[i].State) {
			out[i].State = StateSending
		}
	}
	q.mu.Unlock()
	return out, nil
}

// NextDue returns the earliest NextAttempt among queued jobs that are not
// leased, and false when there is none. A dispatcher that found nothing
// to lease sleeps until then (or until Wakeup).
func (q *Queue) NextDue() (time.Time, bool) {
	var at time.Time
	now := q.opts.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expireLeasesLocked(now)
	err := q.db.View(func(tx *bbolt.Tx) error {
		at = q.firstFreeLocked(tx.Bucket(bucketDue))
		return nil
	})
	if err != nil || at.IsZero() {
		return time.Time{}, false
	}
	return at, true
}

// firstFreeLocked returns the NextAttempt of the first due-index entry
// that is neither leased nor being removed; q.mu must be held.
func (q *Queue) firstFreeLocked(due *bbolt.Bucket) time.Time {
	c := due.Cursor()
	for k, _ := c.First(); k != nil; k, _ = c.Next() {
		id := string(k[8:])
		if _, busy := q.leases[id]; busy {
			continue
		}
		if _, busy := q.pending[id]; busy {
			continue
		}
		return fromNanos(max(keyTime(k), 1))
	}
	return time.Time{}
}

// Stats returns the queue depth and the counters since Open. Due,
// InFlight and Dead come from memory; Deferred and OldestDueAge read the
// due index (proportional to the number of deferred jobs).
func (q *Queue) Stats() (Stats, error) {
	if q.isClosed() {
		return Stats{}, ErrClosed
	}
	now := q.opts.Now()
	s := Stats{
		Expired: q.expired.Load(), Delivered: q.delivered.Load(),
		Retried: q.retried.Load(), DeadTotal: q.deadTotal.Load(),
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.expireLeasesLocked(now)
	s.InFlight = len(q.leases)
	s.Dead = q.dead
	err := q.db.View(func(tx *bbolt.Tx) error {
		due := tx.Bucket(bucketDue)
		c := due.Cursor()
		for k, _ := c.Seek(timeKey(now.Add(time.Nanosecond), "")); k != nil; k, _ = c.Next() {
			s.Deferred++
		}
		if first := q.firstFreeLocked(due); !first.IsZero() && !first.After(now) {
			s.OldestDueAge = now.Sub(first)
		}
		return nil
	})
	if err != nil {
		return Stats{}, fmt.Errorf("queue: stats: %w", err)
	}
	s.Due = max(q.queued-s.Deferred-s.InFlight, 0)
	return s, nil
}
