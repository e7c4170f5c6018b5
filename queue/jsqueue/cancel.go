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
		removed, err := q.removeQueued(ctx, q.jobsPrefix+u+"."+tag+"."+sub, queue.StateCancelled)
		n += removed
		if err != nil {
			return n, fmt.Errorf("jsqueue: cancel: %w", err)
		}
	}
	return n, nil
}

// collapse removes the queued jobs that jobs replace: same user and sub
// tag, stored by an earlier Submit (as the bbolt queue does). It runs
// before jobs are published, so they never collapse each other.
func (q *Queue) collapse(ctx context.Context, jobs []*queue.Job) error {
	seen := map[string]bool{}
	for _, j := range jobs {
		if j.User == "" || j.SubTag == "" {
			continue
		}
		filter := q.jobsPrefix + token(j.User) + ".*." + token(j.SubTag)
		if seen[filter] {
			continue
		}
		seen[filter] = true
		if _, err := q.removeQueued(ctx, filter, queue.StateCollapsed); err != nil {
			return fmt.Errorf("jsqueue: collapse: %w", err)
		}
	}
	return nil
}

// removeQueued deletes the jobs on subjects matching filter that this node
// has not leased, recording state for each, and returns how many it
// deleted.
func (q *Queue) removeQueued(ctx context.Context, filter, state string) (int, error) {
	n := 0
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
				return true, nil // acked or removed meanwhile
			}
			return false, err
		}
		n++
		return true, q.putStatus(ctx, newStatus(j, state, "", q.opts.Now()))
	})
	return n, err
}
