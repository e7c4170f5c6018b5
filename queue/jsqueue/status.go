package jsqueue

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/queue"
)

// Status returns the state of every job of a notification, in job id order
// (creation order for generated ids), read from the status bucket. Jobs
// leased by this node are reported as "sending"; a job leased by another
// node shows its last written state ("queued" or "retrying"). Records are
// kept for StatusRetention after their last change; queue.ErrNotFound when
// there is none.
func (q *Queue) Status(ctx context.Context, notificationID string) ([]queue.JobStatus, error) {
	if q.isClosed() {
		return nil, queue.ErrClosed
	}
	w, err := q.status.Watch(ctx, token(notificationID)+".*", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("jsqueue: status: %w", err)
	}
	defer func() { _ = w.Stop() }()
	var out []queue.JobStatus
	for {
		var e jetstream.KeyValueEntry
		select {
		case e = <-w.Updates():
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		if e == nil { // end of the current values
			break
		}
		s, err := decodeStatus(e.Value())
		if err != nil {
			q.opts.Logger.Warn("jsqueue: unreadable status record", "key", e.Key(), "err", err)
			continue
		}
		out = append(out, s.public())
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("jsqueue: notification %q: %w", notificationID, queue.ErrNotFound)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].JobID < out[b].JobID })
	q.mu.Lock()
	for i := range out {
		if _, ok := q.inflight[out[i].JobID]; ok {
			out[i].State = queue.StateSending
		}
	}
	q.mu.Unlock()
	return out, nil
}

// Stats reads the stream and consumer state (two requests to the server).
// Only Dead and InFlight are exact:
//   - Due: job messages no Lease has seen yet (deferred jobs not yet seen
//     are counted here too);
//   - Deferred: messages held by the consumer that this node has not
//     leased: retries and deferrals waiting for their delay, plus the
//     leases of other nodes;
//   - InFlight: jobs leased by this node;
//   - Dead: dead letters stored;
//   - OldestDueAge: age of the oldest stored job message when Due > 0;
//   - the counters count this node's calls since Open.
func (q *Queue) Stats() (queue.Stats, error) {
	if q.isClosed() {
		return queue.Stats{}, queue.ErrClosed
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ci, err := q.cons.Info(ctx)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("jsqueue: stats: %w", err)
	}
	ji, err := q.jobs.Info(ctx)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("jsqueue: stats: %w", err)
	}
	di, err := q.dead.Info(ctx)
	if err != nil {
		return queue.Stats{}, fmt.Errorf("jsqueue: stats: %w", err)
	}
	q.mu.Lock()
	inflight := len(q.inflight)
	q.mu.Unlock()
	st := queue.Stats{
		Due:       int(ci.NumPending),
		Deferred:  max(ci.NumAckPending-inflight, 0),
		InFlight:  inflight,
		Dead:      int(di.State.Msgs),
		Expired:   q.expired.Load(),
		Delivered: q.delivered.Load(),
		Retried:   q.retried.Load(),
		DeadTotal: q.deadTotal.Load(),
	}
	if st.Due > 0 && !ji.State.FirstTime.IsZero() {
		st.OldestDueAge = max(q.opts.Now().Sub(ji.State.FirstTime), 0)
	}
	return st, nil
}
