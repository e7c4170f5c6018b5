package jsqueue

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/queue"
)

const (
	// maxKeyField bounds the caller's strings that become subject tokens
	// and KV keys (base64 grows them by a third).
	maxKeyField = 1024
	// publishWindow bounds the async publishes waiting for their PubAck,
	// below the client's default pending limit, so a large fan-out does
	// not stall the connection.
	publishWindow = 1000
)

func validateJob(j *queue.Job) error {
	if j == nil {
		return fmt.Errorf("nil job: %w", queue.ErrInvalid)
	}
	for _, f := range [...]struct{ name, v string }{
		{"ID", j.ID}, {"NotificationID", j.NotificationID}, {"User", j.User},
		{"Tag", j.Tag}, {"SubTag", j.SubTag}, {"DeviceID", j.DeviceID},
	} {
		if len(f.v) > maxKeyField {
			return fmt.Errorf("%s longer than %d bytes: %w", f.name, maxKeyField, queue.ErrInvalid)
		}
	}
	if j.Attempts < 0 {
		return fmt.Errorf("Attempts negative: %w", queue.ErrInvalid)
	}
	return nil
}

// jobSubject puts the cancel keys in the subject, so that Cancel finds the
// jobs of a user+tag with the server's subject filter instead of an index.
func (q *Queue) jobSubject(j *queue.Job) string {
	return q.jobsPrefix + token(j.User) + "." + token(j.Tag) + "." + token(j.SubTag)
}

func (q *Queue) statusKey(notificationID, jobID string) string {
	return token(notificationID) + "." + token(jobID)
}

// Enqueue stores jobs like Submit without an idempotency key.
func (q *Queue) Enqueue(ctx context.Context, jobs ...*queue.Job) error {
	_, _, err := q.Submit(ctx, queue.Submission{Jobs: jobs})
	return err
}

// Submit publishes one message per job and one status record per job and
// returns after JetStream acknowledged all of them. Each job gets an ID
// (when empty), CreatedAt (when zero) and NextAttempt (when zero: NotBefore
// if later than now, else now); the caller's structs are updated.
//
// With s.IdempotencyKey, the key is claimed first (KV create, TTL
// IdempotencyWindow): a Submit that finds it done stores nothing and
// returns the stored result with duplicate=true; one that finds it claimed
// by a Submit still in progress waits for that one (up to PendingTimeout,
// then takes the claim over). The job messages of a keyed submission carry
// a Nats-Msg-Id derived from the key, so that a takeover within the
// stream's two-minute duplicate window stores them once.
//
// If Submit fails, some jobs may be stored (at least once: the caller
// retries, with its key when it has one).
func (q *Queue) Submit(ctx context.Context, s queue.Submission) (result []byte, duplicate bool, err error) {
	if len(s.IdempotencyKey) > maxKeyField {
		return nil, false, fmt.Errorf("jsqueue: IdempotencyKey longer than %d bytes: %w", maxKeyField, queue.ErrInvalid)
	}
	if len(s.Jobs) == 0 && s.IdempotencyKey == "" {
		return s.Result, false, nil
	}
	if q.isClosed() {
		return nil, false, queue.ErrClosed
	}
	for i, j := range s.Jobs {
		if err := validateJob(j); err != nil {
			return nil, false, fmt.Errorf("jsqueue: jobs[%d]: %w", i, err)
		}
	}
	var rev uint64
	if s.IdempotencyKey != "" {
		stored, dup, r, err := q.claim(ctx, s.IdempotencyKey)
		if err != nil || dup {
			return stored, dup, storageErr(err)
		}
		rev = r
	}
	if err := q.collapse(ctx, s.Jobs); err != nil {
		if rev != 0 {
			_ = q.idem.Delete(context.WithoutCancel(ctx), token(s.IdempotencyKey), jetstream.LastRevision(rev))
		}
		return nil, false, storageErr(err)
	}
	if err := q.publishJobs(ctx, s.IdempotencyKey, s.Jobs); err != nil {
		if rev != 0 {
			// Free the key so that the caller's retry stores the jobs;
			// best effort, a stale claim is taken over after PendingTimeout.
			_ = q.idem.Delete(context.WithoutCancel(ctx), token(s.IdempotencyKey), jetstream.LastRevision(rev))
		}
		return nil, false, storageErr(err)
	}
	if rev != 0 {
		v, _ := json.Marshal(idemRecord{V: recordVersion, Done: true, At: q.opts.Now(), Result: s.Result})
		if _, err := q.idem.Update(ctx, token(s.IdempotencyKey), v, rev); err != nil {
			// The jobs are stored: a retry within PendingTimeout waits,
			// after it the Nats-Msg-Ids keep the jobs from doubling
			// within the duplicate window.
			return nil, false, fmt.Errorf("jsqueue: idempotency key: %w", err)
		}
	}
	if len(s.Jobs) > 0 {
		q.notify()
	}
	return s.Result, false, nil
}

// claim takes the idempotency key for this Submit (rev > 0) or returns the
// result stored by an earlier one (dup).
func (q *Queue) claim(ctx context.Context, key string) (stored []byte, dup bool, rev uint64, err error) {
	k := token(key)
	pending, _ := json.Marshal(idemRecord{V: recordVersion, At: q.opts.Now()})
	wait := 20 * time.Millisecond
	for {
		rev, err = q.idem.Create(ctx, k, pending)
		if err == nil {
			return nil, false, rev, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return nil, false, 0, fmt.Errorf("jsqueue: idempotency key: %w", err)
		}
		e, err := q.idem.Get(ctx, k)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // deleted between the two calls: create again
		}
		if err != nil {
			return nil, false, 0, fmt.Errorf("jsqueue: idempotency key: %w", err)
		}
		var r idemRecord
		if json.Unmarshal(e.Value(), &r) != nil || r.V != recordVersion {
			return nil, false, 0, fmt.Errorf("jsqueue: idempotency key: %w", errCorrupt)
		}
		if r.Done {
			return r.Result, true, 0, nil
		}
		if q.opts.Now().Sub(r.At) > q.opts.PendingTimeout {
			rev, err = q.idem.Update(ctx, k, pending, e.Revision())
			if err == nil {
				return nil, false, rev, nil
			}
			continue // another Submit took it over first
		}
		// The claimant is publishing: wait for it to finish.
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, false, 0, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, time.Second)
	}
}

// publishJobs publishes every job message and status record asynchronously
// and waits for all their PubAcks, in windows of publishWindow.
func (q *Queue) publishJobs(ctx context.Context, idemKey string, jobs []*queue.Job) error {
	now := q.opts.Now()
	futures := make([]jetstream.PubAckFuture, 0, min(2*len(jobs), publishWindow))
	for i, j := range jobs {
		if j.ID == "" {
			j.ID = q.ids.Next()
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
		data, err := encodeJob(j)
		if err != nil {
			return fmt.Errorf("jsqueue: encode job %s: %w", j.ID, err)
		}
		msgID := "job:" + j.ID
		if idemKey != "" {
			msgID = fmt.Sprintf("idem:%s:%d", token(idemKey), i)
		}
		f, err := q.js.PublishMsgAsync(&nats.Msg{Subject: q.jobSubject(j), Data: data}, jetstream.WithMsgID(msgID))
		if err != nil {
			return fmt.Errorf("jsqueue: publish job %s: %w", j.ID, err)
		}
		futures = append(futures, f)
		sf, err := q.putStatusAsync(newStatus(j, queue.StateQueued, "", now))
		if err != nil {
			return err
		}
		futures = append(futures, sf)
		if len(futures) >= publishWindow {
			if err := waitAcks(ctx, futures); err != nil {
				return err
			}
			futures = futures[:0]
		}
	}
	return waitAcks(ctx, futures)
}

func (q *Queue) putStatusAsync(s statusRecord) (jetstream.PubAckFuture, error) {
	v, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("jsqueue: encode status %s: %w", s.JobID, err)
	}
	f, err := q.js.PublishMsgAsync(&nats.Msg{Subject: q.statusSubject + q.statusKey(s.NotificationID, s.JobID), Data: v})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: publish status %s: %w", s.JobID, err)
	}
	return f, nil
}

// putStatus writes status records and waits for the server to store them.
func (q *Queue) putStatus(ctx context.Context, recs ...statusRecord) error {
	futures := make([]jetstream.PubAckFuture, 0, len(recs))
	for _, r := range recs {
		f, err := q.putStatusAsync(r)
		if err != nil {
			return err
		}
		futures = append(futures, f)
	}
	return waitAcks(ctx, futures)
}

func waitAcks(ctx context.Context, futures []jetstream.PubAckFuture) error {
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("jsqueue: publish %s: %w", f.Msg().Subject, err)
		case <-ctx.Done():
			return fmt.Errorf("jsqueue: waiting for PubAck: %w", ctx.Err())
		}
	}
	return nil
}

// storageErr classifies a failed write to JetStream as queue.ErrStorage
// (the API answers 503 and the caller retries), unless it is already a
// caller error, a shutdown or the caller's own deadline. Part of a batch
// may be stored when JetStream fails midway; a retry with the same
// idempotency key does not store those jobs twice (their Nats-Msg-Id is
// derived from the key).
func storageErr(err error) error {
	if err == nil || errors.Is(err, queue.ErrInvalid) || errors.Is(err, queue.ErrClosed) ||
		errors.Is(err, queue.ErrStorage) || errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%w: %w", queue.ErrStorage, err)
}
