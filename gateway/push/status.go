package push

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/pushpull/pushpull/queue"
)

// JobState is the last known state of one device job of a notification.
type JobState struct {
	JobID    string `json:"job_id"`
	User     string `json:"user,omitempty"`
	DeviceID string `json:"device_id,omitempty"`
	Platform string `json:"platform"`
	AppID    string `json:"app_id,omitempty"`
	// State: queued, sending, delivered, retrying, dead, dropped,
	// cancelled, collapsed, expired.
	State     string `json:"state"`
	Attempts  int    `json:"attempts"`
	LastError string `json:"last_error,omitempty"`
	// NextAttempt is set while the job waits (queued, retrying).
	NextAttempt *time.Time `json:"next_attempt,omitempty"`
	UpdatedAt   time.Time  `json:"updated_at"`
}

// Status is a notification's progress.
type Status struct {
	ID string `json:"id"`
	// States counts the jobs per state.
	States map[string]int `json:"states"`
	Jobs   []JobState     `json:"jobs"`
}

// Status reports the state of every job of notification id. Records are
// kept for the queue's status retention (default 24 h); ErrNotFound after
// that, for an unknown id, or for a notification that made no job.
func (s *Service) Status(ctx context.Context, id string) (Status, error) {
	js, err := s.q.Status(ctx, id)
	if errors.Is(err, queue.ErrNotFound) {
		return Status{}, fmt.Errorf("push: notification %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return Status{}, fmt.Errorf("push: status: %w", err)
	}
	st := Status{ID: id, States: make(map[string]int), Jobs: make([]JobState, len(js))}
	for i, j := range js {
		st.States[j.State]++
		st.Jobs[i] = JobState{
			JobID: j.JobID, User: j.User, DeviceID: j.DeviceID, Platform: j.Platform, AppID: j.AppID,
			State: j.State, Attempts: j.Attempts, LastError: j.LastError, UpdatedAt: j.UpdatedAt.UTC(),
		}
		if (j.State == queue.StateQueued || j.State == queue.StateRetrying) && !j.NextAttempt.IsZero() {
			t := j.NextAttempt.UTC()
			st.Jobs[i].NextAttempt = &t
		}
	}
	return st, nil
}
