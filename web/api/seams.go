package api

import (
	"context"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/queue"
)

// QueueAdmin is what the queue administration routes need:
// *queue.Queue implements it (a cluster engine can too).
type QueueAdmin interface {
	Stats() (queue.Stats, error)
	ListDead(ctx context.Context, cursor string, limit int) (jobs []queue.DeadJob, next string, err error)
	RetryDead(ctx context.Context, ids []string, all bool) (int, error)
	DeleteDead(ctx context.Context, ids []string, all bool) (int, error)
}

// DeviceStore is what the device routes (backend and app side) need:
// *devices.Registry implements it.
type DeviceStore interface {
	Register(ctx context.Context, d devices.Device) (devices.Registration, error)
	Get(ctx context.Context, id string) (devices.Device, error)
	ListByUser(ctx context.Context, user string) ([]devices.Device, error)
	Remove(ctx context.Context, id string) (devices.Device, error)
}

var (
	_ QueueAdmin  = (*queue.Queue)(nil)
	_ DeviceStore = (*devices.Registry)(nil)
)
