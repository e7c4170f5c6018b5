package jsqueue

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/queue"
)

// Cancel deletes the queued jobs that match f and records state
// "cancelled" for them, returning how many it deleted. Users empty means
// every user. The jobs are found with the server's subject filter (the
// user, tag and sub tag are tokens of a job's subject), one request per
// job. Jobs leased by this node are left alone, as in the bbolt queue; a
// job leased by another node at that moment is cancelled too, and its
// send may still complete.
func (q *Queue) Cancel(ctx context.Context, f queue.CancelFilter) (int, error) {
	if q.isClosed() {
		return 0, queue.ErrClosed
	}
	if f.Tag == "" && f.SubTag == "" {
		return 0, fmt.Errorf("jsqueue: cancel needs a tag or a sub tag: %w", queue.ErrInvalid)
	}
	tag, sub := "*", "*"
	if f.Tag != "" {
		tag = token(f.Tag)
	}
	if f.SubTag != "" {
		sub = token(f.SubTag)
	}
	users := []string{"*"}
	if len(f.Users) > 0 {
		users = users[:0]
		for _, u := range f.Users {
			users = append(users, token(u))
		}
	}
	n := 0
	for _, u := range users {
		filter := q.jobsPrefix + u + "." + tag + "." + sub
		err := scan(ctx, q.jobs, filter, 1, func(m *jetstream.RawStreamMsg) (bool, error) {
			j, err := decodeJob(m.Data)
			if err != nil {
				return true, nil
			}
			q.mu.Lock()
			_, leased := q.inflight[j.ID]
			q.mu.Unlock()
			if leased {
				return true, nil
			}
			if err := q.jobs.DeleteMsg(ctx, m.Sequence); err != nil {
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					return true, nil // acked or cancelled meanwhile
				}
				return false, err
			}
			n++
			return true, q.putStatus(ctx, newStatus(j, queue.StateCancelled, "", q.opts.Now()))
		})
		if err != nil {
			return n, fmt.Errorf("jsqueue: cancel: %w", err)
		}
	}
	return n, nil
}
