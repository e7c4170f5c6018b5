package jsqueue

import (
	"container/heap"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/queue"
)

// Lease hands out up to max due jobs, in stream order (not by
// NextAttempt: the server decides the order of redeliveries). It does not
// wait for jobs to arrive. A leased job is in flight until Ack, Retry,
// Dead or Drop on this node, or until LeaseTimeout passes, after which the
// server hands it to another Lease (on any node).
//
// A message whose job is not due yet (deferred by NotBefore, or held back
// by a Retry of a node that crashed before the delay was set) is nak'd with
// the remaining delay. A job past its ExpiresAt is dead-lettered "expired"
// instead of being returned. Jobs that were delivered before resume their
// Attempts, LastError and NextAttempt from their status record.
func (q *Queue) Lease(ctx context.Context, max int) ([]*queue.Job, error) {
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	if max <= 0 {
		return nil, nil
	}
	q.popPassed()
	var out []*queue.Job
	for len(out) < max {
		batch, err := q.cons.FetchNoWait(max - len(out))
		if err != nil {
			return out, fmt.Errorf("jsqueue: lease: %w", err)
		}
		n := 0
		for msg := range batch.Messages() {
			n++
			j, err := q.admit(ctx, msg)
			if err != nil {
				q.opts.Logger.Error("jsqueue: leased message not admitted", "err", err)
				continue
			}
			if j != nil {
				out = append(out, j)
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) && !errors.Is(err, nats.ErrTimeout) {
			return out, fmt.Errorf("jsqueue: lease: %w", err)
		}
		if n == 0 {
			break
		}
	}
	return out, nil
}

// admit turns a delivered message into a leased job, or settles it when it
// must not be sent now (nil job).
func (q *Queue) admit(ctx context.Context, msg jetstream.Msg) (*queue.Job, error) {
	j, err := decodeJob(msg.Data())
	if err != nil {
		// A message no node can read would be redelivered forever.
		_ = msg.Term()
		return nil, err
	}
	if meta, err := msg.Metadata(); err == nil && meta.NumDelivered > 1 {
		q.resume(ctx, j)
	}
	now := q.opts.Now()
	l := &lease{msg: msg, job: j, at: now}
	if !j.ExpiresAt.IsZero() && now.After(j.ExpiresAt) {
		j.LastError = queue.ReasonExpired
		return nil, q.toDead(ctx, l, queue.ReasonExpired, now)
	}
	if wait := j.NextAttempt.Sub(now); wait > 0 {
		if err := msg.NakWithDelay(wait); err != nil {
			return nil, fmt.Errorf("jsqueue: defer job %s: %w", j.ID, err)
		}
		q.holdUntil(j.NextAttempt)
		return nil, nil
	}
	q.mu.Lock()
	q.inflight[j.ID] = l
	q.mu.Unlock()
	cp := *j
	return &cp, nil
}

// resume applies the retry state kept in the status record to a
// redelivered job. Without a record (pruned, or never written) the
// message's own state stands.
func (q *Queue) resume(ctx context.Context, j *queue.Job) {
	e, err := q.status.Get(ctx, q.statusKey(j.NotificationID, j.ID))
	if err != nil {
		return
	}
	s, err := decodeStatus(e.Value())
	if err != nil || s.Attempts < j.Attempts {
		return
	}
	j.Attempts, j.LastError = s.Attempts, s.LastError
	if s.NextAttempt.After(j.NextAttempt) {
		j.NextAttempt = s.NextAttempt
	}
}

// staleLeases is how many lease timeouts a lease is kept for a late
// settle: by then the server has handed the job to someone else, and a
// caller that never settles must not grow the map forever.
const staleLeases = 10

// popPassed forgets the held-back times that have come, and the leases
// nobody settled.
func (q *Queue) popPassed() {
	now := q.opts.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	for len(q.due) > 0 && !q.due[0].After(now) {
		heap.Pop(&q.due)
	}
	for id, l := range q.inflight {
		if now.Sub(l.at) > staleLeases*q.opts.LeaseTimeout {
			delete(q.inflight, id)
		}
	}
}

// take removes the lease of job id held by this node.
func (q *Queue) take(id string) *lease {
	q.mu.Lock()
	defer q.mu.Unlock()
	l := q.inflight[id]
	delete(q.inflight, id)
	return l
}

func (q *Queue) putBack(l *lease) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if _, ok := q.inflight[l.job.ID]; !ok {
		q.inflight[l.job.ID] = l
	}
}

// ackConcurrency bounds the acks of one Ack call waiting for the server
// at once: one at a time costs a round trip per job.
const ackConcurrency = 32

// Ack marks jobs delivered: their messages are acked (removed from the
// work-queue stream) and their state becomes "delivered". Ids not leased
// by this node are ignored (the lease may have timed out and another node
// sent the job too). Ack returns after the server confirmed every ack; a
// job whose ack failed stays leased here, and the first error is returned.
func (q *Queue) Ack(ctx context.Context, ids ...string) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	leases := make([]*lease, 0, len(ids))
	for _, id := range ids {
		if l := q.take(id); l != nil {
			leases = append(leases, l)
		}
	}
	errs := make([]error, len(leases))
	sem := make(chan struct{}, ackConcurrency)
	var wg sync.WaitGroup
	for i, l := range leases {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = l.msg.DoubleAck(ctx)
		})
	}
	wg.Wait()
	now := q.opts.Now()
	recs := make([]statusRecord, 0, len(leases))
	var firstErr error
	for i, l := range leases {
		if errs[i] != nil {
			q.putBack(l)
			if firstErr == nil {
				firstErr = fmt.Errorf("jsqueue: ack %s: %w", l.job.ID, errs[i])
			}
			continue
		}
		q.delivered.Add(1)
		recs = append(recs, newStatus(l.job, queue.StateDelivered, "", now))
	}
	if err := q.putStatus(ctx, recs...); err != nil && firstErr == nil {
		firstErr = err
	}
	return firstErr
}

// Retry records a failed attempt and schedules the next one, as the bbolt
// queue does: Attempts+1, LastError = reason, NextAttempt = now +
// max(after, backoff) (after is the provider's Retry-After). The state is
// written to the status record first, then the message is nak'd with that
// delay, so a node that dies in between loses no attempt. A job that
// reaches MaxAttempts dies "max_attempts"; one whose next attempt would
// fall after ExpiresAt dies "expired". j is updated. queue.ErrNotFound
// when j is not leased by this node.
func (q *Queue) Retry(ctx context.Context, j *queue.Job, after time.Duration, reason string) error {
	return q.reschedule(ctx, j, after, reason, true)
}

// Postpone puts a leased job back unsent, due again after exactly after,
// without counting an attempt, as the bbolt queue does. A job whose next
// attempt would fall after ExpiresAt dies "expired". j is updated.
// queue.ErrNotFound when j is not leased by this node.
func (q *Queue) Postpone(ctx context.Context, j *queue.Job, after time.Duration, reason string) error {
	return q.reschedule(ctx, j, after, reason, false)
}

func (q *Queue) reschedule(ctx context.Context, j *queue.Job, after time.Duration, reason string, attempted bool) error {
	op := "retry"
	if !attempted {
		op = "postpone"
	}
	if q.isClosed() {
		return queue.ErrClosed
	}
	l := q.take(j.ID)
	if l == nil {
		return fmt.Errorf("jsqueue: %s %s: %w", op, j.ID, queue.ErrNotFound)
	}
	now := q.opts.Now()
	sj := l.job
	sj.LastError = reason
	defer func() { j.Attempts, j.LastError, j.NextAttempt = sj.Attempts, sj.LastError, sj.NextAttempt }()
	delay := after
	if attempted {
		sj.Attempts++
		if sj.Attempts >= q.opts.MaxAttempts {
			return q.settleErr(l, q.toDead(ctx, l, queue.ReasonMaxAttempts, now))
		}
		delay = max(after, queue.Backoff(q.opts.BackoffBase, q.opts.BackoffCap, sj.Attempts, q.opts.Random()))
	}
	next := now.Add(delay)
	if !sj.ExpiresAt.IsZero() && next.After(sj.ExpiresAt) {
		return q.settleErr(l, q.toDead(ctx, l, queue.ReasonExpired, now))
	}
	sj.NextAttempt = next
	if err := q.putStatus(ctx, newStatus(sj, queue.StateRetrying, reason, now)); err != nil {
		return q.settleErr(l, err)
	}
	if err := l.msg.NakWithDelay(delay); err != nil {
		return q.settleErr(l, fmt.Errorf("jsqueue: %s %s: %w", op, sj.ID, err))
	}
	if attempted {
		q.retried.Add(1)
	}
	q.holdUntil(next)
	return nil
}

// settleErr keeps the lease of a job whose settlement failed, so that the
// caller may try again while the lease lasts.
func (q *Queue) settleErr(l *lease, err error) error {
	if err != nil {
		q.putBack(l)
	}
	return err
}

// Dead moves a job to the dead letters with reason (state "dead", or
// "expired" when reason is "expired"). queue.ErrNotFound when j is not
// leased by this node.
func (q *Queue) Dead(ctx context.Context, j *queue.Job, reason string) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	l := q.take(j.ID)
	if l == nil {
		return fmt.Errorf("jsqueue: dead %s: %w", j.ID, queue.ErrNotFound)
	}
	l.job.LastError = reason
	return q.settleErr(l, q.toDead(ctx, l, reason, q.opts.Now()))
}

// Drop removes a job without a dead letter (the token is invalid) and
// records state "dropped" with reason. queue.ErrNotFound when j is not
// leased by this node.
func (q *Queue) Drop(ctx context.Context, j *queue.Job, reason string) error {
	if q.isClosed() {
		return queue.ErrClosed
	}
	l := q.take(j.ID)
	if l == nil {
		return fmt.Errorf("jsqueue: drop %s: %w", j.ID, queue.ErrNotFound)
	}
	if err := l.msg.DoubleAck(ctx); err != nil {
		return q.settleErr(l, fmt.Errorf("jsqueue: drop %s: %w", j.ID, err))
	}
	l.job.LastError = reason
	return q.putStatus(ctx, newStatus(l.job, queue.StateDropped, reason, q.opts.Now()))
}

// toDead stores the dead letter first and then acks the job, so that a
// crash in between leaves a duplicate rather than a lost job.
func (q *Queue) toDead(ctx context.Context, l *lease, reason string, now time.Time) error {
	j := l.job
	data, err := json.Marshal(deadRecord{V: recordVersion, Job: j, Reason: reason, DiedAt: now})
	if err != nil {
		return fmt.Errorf("jsqueue: encode dead letter %s: %w", j.ID, err)
	}
	if _, err := q.js.Publish(ctx, q.deadPrefix+token(j.ID), data); err != nil {
		return fmt.Errorf("jsqueue: dead letter %s: %w", j.ID, err)
	}
	if err := l.msg.DoubleAck(ctx); err != nil {
		return fmt.Errorf("jsqueue: ack dead job %s: %w", j.ID, err)
	}
	state := queue.StateDead
	if reason == queue.ReasonExpired {
		state = queue.StateExpired
		q.expired.Add(1)
	}
	q.deadTotal.Add(1)
	return q.putStatus(ctx, newStatus(j, state, reason, now))
}
