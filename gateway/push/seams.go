package push

import (
	"context"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/queue"
)

// Queue is what the service needs from the durable job queue. *queue.Queue
// (bbolt, one node) implements it; a cluster engine can too. The
// contract is queue.Queue's: Submit stores every job of a submission (and
// its idempotency key) durably before returning; Lease hands each due job
// to one caller until it is settled or its lease times out (at least
// once); Ack, Retry, Postpone, Dead and Drop settle a leased job; Wakeup signals
// newly due work.
type Queue interface {
	Submit(ctx context.Context, s queue.Submission) (result []byte, duplicate bool, err error)
	Lease(ctx context.Context, max int) ([]*queue.Job, error)
	Ack(ctx context.Context, ids ...string) error
	Retry(ctx context.Context, j *queue.Job, after time.Duration, reason string) error
	Postpone(ctx context.Context, j *queue.Job, after time.Duration, reason string) error
	Dead(ctx context.Context, j *queue.Job, reason string) error
	Drop(ctx context.Context, j *queue.Job, reason string) error
	Cancel(ctx context.Context, f queue.CancelFilter) (int, error)
	Status(ctx context.Context, notificationID string) ([]queue.JobStatus, error)
	NextDue() (time.Time, bool)
	Wakeup() <-chan struct{}
}

// Registry is what the service needs from the device registry:
// *devices.Registry implements it.
type Registry interface {
	ListByUsers(ctx context.Context, users []string) (map[string][]devices.Device, error)
	RemoveToken(ctx context.Context, platformName, token string) (devices.Device, error)
}

var (
	_ Queue    = (*queue.Queue)(nil)
	_ Registry = (*devices.Registry)(nil)
)
