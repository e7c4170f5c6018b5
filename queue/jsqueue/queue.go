package jsqueue

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/queue"
)

// Queue is the JetStream push queue. Create it with Open; every method is
// safe for concurrent use.
type Queue struct {
	opts   Options
	js     jetstream.JetStream
	jobs   jetstream.Stream
	dead   jetstream.Stream
	cons   jetstream.Consumer
	status jetstream.KeyValue
	idem   jetstream.KeyValue

	jobsPrefix, deadPrefix, wakeSubject string
	statusSubject                       string // "$KV.<bucket>." for batched async puts

	wake    chan struct{}
	wakeSub *nats.Subscription

	ids *queue.IDs

	mu       sync.Mutex
	inflight map[string]*lease // leases held by this node, by job id
	due      timeHeap          // NextAttempt of jobs this node held back
	closed   bool

	expired, delivered, retried, deadTotal atomic.Uint64
}

// lease is a job handed out by Lease on this node and the message that
// settles it.
type lease struct {
	msg jetstream.Msg
	job *queue.Job
	at  time.Time
}

// Open creates (or binds to, updating their configuration) the queue's
// streams, consumer and buckets, and subscribes to the wake subject.
// The caller keeps ownership of js and its connection: Close the queue
// before closing them.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Queue, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	if js == nil {
		return nil, fmt.Errorf("jsqueue: nil JetStream: %w", queue.ErrInvalid)
	}
	o := opts.withDefaults()
	q := &Queue{
		opts: o, js: js,
		jobsPrefix:    o.Subject + ".jobs.",
		deadPrefix:    o.Subject + ".dead.",
		wakeSubject:   o.Subject + ".wake",
		statusSubject: "$KV." + o.StatusBucket + ".",
		wake:          make(chan struct{}, 1),
		inflight:      make(map[string]*lease),
	}
	q.ids = queue.NewIDs(o.Now)

	var err error
	q.jobs, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        o.JobsStream,
		Description: "pushpull push jobs (one message per job)",
		Subjects:    []string{q.jobsPrefix + ">"},
		Retention:   jetstream.WorkQueuePolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		Duplicates:  2 * time.Minute,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: jobs stream %s: %w", o.JobsStream, err)
	}
	q.cons, err = q.jobs.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{
		Durable:       o.Consumer,
		Description:   "pushpull dispatch leases",
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       o.LeaseTimeout,
		MaxDeliver:    -1, // attempts are counted by Retry, not by deliveries (deferrals and lease timeouts redeliver too)
		MaxAckPending: -1, // retried and deferred jobs wait in the ack-pending set: a limit would stall due work behind them
		FilterSubject: q.jobsPrefix + ">",
		Replicas:      o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: consumer %s: %w", o.Consumer, err)
	}
	q.dead, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        o.DeadStream,
		Description: "pushpull dead letters",
		Subjects:    []string{q.deadPrefix + ">"},
		Retention:   jetstream.LimitsPolicy,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
		MaxAge:      o.DeadRetention,
		MaxMsgs:     int64(o.DeadMax),
		Discard:     jetstream.DiscardOld,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: dead stream %s: %w", o.DeadStream, err)
	}
	q.status, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: o.StatusBucket, Description: "pushpull job status",
		TTL: o.StatusRetention, Replicas: o.Replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: status bucket %s: %w", o.StatusBucket, err)
	}
	q.idem, err = js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: o.IdemBucket, Description: "pushpull idempotency keys",
		TTL: o.IdempotencyWindow, Replicas: o.Replicas, Storage: jetstream.FileStorage,
	})
	if err != nil {
		return nil, fmt.Errorf("jsqueue: idempotency bucket %s: %w", o.IdemBucket, err)
	}
	// The wake subject is core NATS (no storage): a lost signal only
	// delays a dispatcher until NextDue's poll bound.
	q.wakeSub, err = js.Conn().Subscribe(q.wakeSubject, func(*nats.Msg) { q.signal() })
	if err != nil {
		return nil, fmt.Errorf("jsqueue: wake subscription: %w", err)
	}
	q.signal() // jobs may be stored already
	return q, nil
}

// Close unsubscribes from the wake subject; later calls return
// queue.ErrClosed. Jobs leased here and not settled are redelivered by the
// server after LeaseTimeout. Close is idempotent and closes neither the
// streams nor the connection.
func (q *Queue) Close() error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	if err := q.wakeSub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
		return fmt.Errorf("jsqueue: close: %w", err)
	}
	return nil
}

func (q *Queue) isClosed() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.closed
}

// Wakeup is signalled (non-blocking, capacity 1) when jobs may have become
// due: after a Submit or RetryDead on any node (through a core NATS
// subject, best effort) and at Open.
func (q *Queue) Wakeup() <-chan struct{} { return q.wake }

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// notify tells every node's dispatcher that jobs were stored. Best effort:
// the jobs are durable already, and NextDue bounds the wait without it.
func (q *Queue) notify() {
	if err := q.js.Conn().Publish(q.wakeSubject, nil); err != nil {
		q.opts.Logger.Debug("jsqueue: wake publish failed", "err", err)
	}
}

// NextDue returns the earliest time at which a job held back by this node
// (a Retry or a deferred job) becomes due, but never later than now +
// PollInterval, and true while the queue is open. It is not exact in a
// cluster: jobs held back by other nodes carry no signal, which is what
// the poll bound covers.
func (q *Queue) NextDue() (time.Time, bool) {
	now := q.opts.Now()
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.closed {
		return time.Time{}, false
	}
	at := now.Add(q.opts.PollInterval)
	if len(q.due) > 0 && q.due[0].Before(at) {
		at = q.due[0]
	}
	return at, true
}

// holdUntil records that a job this node held back is due at t.
func (q *Queue) holdUntil(t time.Time) {
	q.mu.Lock()
	defer q.mu.Unlock()
	heap.Push(&q.due, t)
}

// timeHeap is a min-heap of due times; Lease pops the ones that passed.
type timeHeap []time.Time

func (h timeHeap) Len() int           { return len(h) }
func (h timeHeap) Less(i, j int) bool { return h[i].Before(h[j]) }
func (h timeHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *timeHeap) Push(x any)        { *h = append(*h, x.(time.Time)) }
func (h *timeHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	*h = old[:len(old)-1]
	return t
}
