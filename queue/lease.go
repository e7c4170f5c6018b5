package queue

import (
	"context"
	"fmt"
	"time"

	"go.etcd.io/bbolt"
)

// Lease hands out up to max due jobs (NextAttempt <= now), earliest
// NextAttempt first. A leased job is in flight until Ack, Retry, Dead or
// Drop, or until LeaseTimeout passes; no other Lease returns it meanwhile.
// Jobs found past their ExpiresAt are moved to the dead letters with
// reason "expired" instead of being returned. Jobs of one fan-out share
// one Payload slice: treat it as read-only.
func (q *Queue) Lease(ctx context.Context, max int) ([]*Job, error) {
	if q.isClosed() {
		return nil, ErrClosed
	}
	if max <= 0 {
		return nil, nil
	}
	now := q.opts.Now()
	nowN := nanos(now)
	deadline := now.Add(q.opts.LeaseTimeout)
	var out []*Job
	var expired []string
	q.mu.Lock()
	q.expireLeasesLocked(now)
	hadLeases := len(q.leases) > 0
	err := q.db.View(func(tx *bbolt.Tx) error {
		b := openBuckets(tx)
		cache := make(map[string][]byte)
		c := b.due.Cursor()
		for k, _ := c.First(); k != nil && len(out) < max && len(expired) < q.opts.MaxBatch; k, _ = c.Next() {
			if keyTime(k) > nowN {
				break
			}
			id := string(k[8:])
			if _, busy := q.leases[id]; busy {
				continue
			}
			if _, busy := q.pending[id]; busy {
				continue
			}
			v := b.jobs.Get(k[8:])
			if v == nil {
				q.log.Error("due index entry without job", "job", id)
				continue
			}
			j, err := decodeJob(id, v, true)
			if err != nil {
				q.log.Error("undecodable job skipped", "job", id, "err", err)
				continue
			}
			// Expired jobs are leased too, so that no one else takes them
			// before the dead-letter write below ends their lease.
			q.leases[id] = deadline
			if !j.ExpiresAt.IsZero() && !now.Before(j.ExpiresAt) {
				expired = append(expired, id)
				continue
			}
			loadPayload(b, j, cache)
			out = append(out, &j.Job)
		}
		return nil
	})
	if !hadLeases && len(q.leases) > 0 {
		select {
		case q.kick <- struct{}{}:
		default:
		}
	}
	q.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("queue: lease: %w", err)
	}
	if len(expired) > 0 {
		if err := q.settleJobs(ctx, expired, true, func(b *buckets, fx *effects, j *storedJob, now time.Time) error {
			return q.toDead(b, fx, j, ReasonExpired, now)
		}); err != nil {
			return out, err
		}
	}
	return out, nil
}

// settleJobs runs fn on each stored job of ids in one durable write, then
// ends their leases. Missing ids are skipped (already settled elsewhere).
// withPayload must be true when fn writes the job back (Retry, Dead): an
// inline payload is only in the decoded job when it is asked for.
func (q *Queue) settleJobs(ctx context.Context, ids []string, withPayload bool, fn func(b *buckets, fx *effects, j *storedJob, now time.Time) error) error {
	return q.do(ctx, len(ids), func(tx *bbolt.Tx, b *buckets, fx *effects) error {
		now := q.opts.Now()
		fx.release = append(fx.release, ids...)
		for _, id := range ids {
			v := b.jobs.Get([]byte(id))
			if v == nil {
				continue
			}
			j, err := decodeJob(id, v, withPayload)
			if err != nil {
				return fmt.Errorf("job %s: %w", id, err)
			}
			q.claimForce(fx, id)
			if err := fn(b, fx, j, now); err != nil {
				return err
			}
		}
		return nil
	})
}

// Ack marks jobs delivered: they are removed and their state becomes
// "delivered". Unknown ids are ignored (a job may be acked twice when its
// lease timed out and another worker sent it too).
func (q *Queue) Ack(ctx context.Context, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	return q.settleJobs(ctx, ids, false, func(b *buckets, fx *effects, j *storedJob, now time.Time) error {
		if err := q.removeJob(b, fx, j, true); err != nil {
			return err
		}
		fx.delivered++
		return q.setStatus(b, &j.Job, StateDelivered, "", now)
	})
}

// Retry records a failed attempt and schedules the next one: Attempts+1,
// LastError = reason, NextAttempt = now + max(after, backoff), where
// backoff is uniformly random in [0, min(BackoffCap, BackoffBase *
// 2^(Attempts-1))) and after is the provider's Retry-After (0 for none).
// A job that reaches MaxAttempts goes to the dead letters ("max_attempts");
// one whose next attempt would fall after ExpiresAt goes there as
// "expired". j is updated to the stored state. ErrNotFound when the job is
// no longer stored.
func (q *Queue) Retry(ctx context.Context, j *Job, after time.Duration, reason string) error {
	return q.reschedule(ctx, j, after, reason, true)
}

// Postpone puts a leased job back unsent, due again after exactly after:
// LastError = reason, Attempts unchanged (it was not attempted, e.g. its
// provider is paused by the circuit breaker, so a long outage does not
// use up its attempts). A job whose next attempt would fall after
// ExpiresAt goes to the dead letters as "expired". j is updated.
// ErrNotFound when the job is no longer stored.
func (q *Queue) Postpone(ctx context.Context, j *Job, after time.Duration, reason string) error {
	return q.reschedule(ctx, j, after, reason, false)
}

func (q *Queue) reschedule(ctx context.Context, j *Job, after time.Duration, reason string, attempted bool) error {
	frac := q.opts.Random()
	var updated Job
	found := false
	err := q.settleJobs(ctx, []string{j.ID}, true, func(b *buckets, fx *effects, sj *storedJob, now time.Time) error {
		found = true
		sj.LastError = reason
		delay := after
		if attempted {
			sj.Attempts++
			if sj.Attempts >= q.opts.MaxAttempts {
				updated = sj.Job
				return q.toDead(b, fx, sj, ReasonMaxAttempts, now)
			}
			delay = max(after, Backoff(q.opts.BackoffBase, q.opts.BackoffCap, sj.Attempts, frac))
		}
		next := now.Add(delay)
		if !sj.ExpiresAt.IsZero() && next.After(sj.ExpiresAt) {
			updated = sj.Job
			return q.toDead(b, fx, sj, ReasonExpired, now)
		}
		if err := b.due.Delete(timeKey(sj.NextAttempt, sj.ID)); err != nil {
			return err
		}
		sj.NextAttempt = next
		if err := b.due.Put(timeKey(next, sj.ID), nil); err != nil {
			return err
		}
		if err := b.jobs.Put([]byte(sj.ID), encodeJob(nil, &sj.Job, sj.payloadRef)); err != nil {
			return err
		}
		if attempted {
			fx.retried++
		}
		fx.wake = true
		updated = sj.Job
		return q.setStatus(b, &sj.Job, StateRetrying, reason, now)
	})
	if err != nil {
		return err
	}
	if !found {
		op := "retry"
		if !attempted {
			op = "postpone"
		}
		return fmt.Errorf("queue: %s %s: %w", op, j.ID, ErrNotFound)
	}
	j.Attempts, j.LastError, j.NextAttempt = updated.Attempts, updated.LastError, updated.NextAttempt
	return nil
}

// Dead moves a job to the dead letters with reason (state "dead", or
// "expired" when reason is "expired"). ErrNotFound when it is not stored.
func (q *Queue) Dead(ctx context.Context, j *Job, reason string) error {
	return q.settleOne(ctx, j, func(b *buckets, fx *effects, sj *storedJob, now time.Time) error {
		sj.LastError = reason
		return q.toDead(b, fx, sj, reason, now)
	})
}

// Drop removes a job without a dead letter (the token is invalid) and
// records state "dropped" with reason. ErrNotFound when it is not stored.
func (q *Queue) Drop(ctx context.Context, j *Job, reason string) error {
	return q.settleOne(ctx, j, func(b *buckets, fx *effects, sj *storedJob, now time.Time) error {
		if err := q.removeJob(b, fx, sj, true); err != nil {
			return err
		}
		return q.setStatus(b, &sj.Job, StateDropped, reason, now)
	})
}

func (q *Queue) settleOne(ctx context.Context, j *Job, fn func(b *buckets, fx *effects, j *storedJob, now time.Time) error) error {
	found := false
	err := q.settleJobs(ctx, []string{j.ID}, true, func(b *buckets, fx *effects, sj *storedJob, now time.Time) error {
		found = true
		return fn(b, fx, sj, now)
	})
	if err == nil && !found {
		return fmt.Errorf("queue: job %s: %w", j.ID, ErrNotFound)
	}
	return err
}
