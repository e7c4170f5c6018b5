package queue

import (
	"context"
	"fmt"
	"log/slog"
	randv2 "math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/bbolt"
)

// Queue is the durable retry queue. Create it with Open; every method is
// safe for concurrent use.
type Queue struct {
	db   *bbolt.DB
	opts Options
	log  *slog.Logger

	ops     chan *op // pending writes, drained by the committer
	closeMu sync.RWMutex
	closed  bool
	once    sync.Once
	stopCtx context.Context // cancelled by Close: ends the background loop
	stopFn  context.CancelFunc
	loopWG  sync.WaitGroup
	commitW sync.WaitGroup

	wake chan struct{} // Wakeup, cap 1
	kick chan struct{} // tells the background loop that leases changed, cap 1

	// mu guards the in-memory state below. Lock order: mu before any bbolt
	// read transaction; the committer takes mu only inside its write
	// callback, never while bbolt may remap, so the two cannot deadlock.
	mu      sync.Mutex
	leases  map[string]time.Time // job id -> lease deadline
	pending map[string]struct{}  // ids a write in progress is removing
	queued  int                  // jobs stored (due index size)
	dead    int                  // dead letters stored

	ids *IDs // job and payload ids

	delivered, retried, expired, deadTotal atomic.Uint64
	commits, committedOps                  atomic.Uint64 // group-commit efficiency, for benchmarks
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Random == nil {
		o.Random = randv2.Float64
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.BackoffBase, time.Second)
	def(&o.BackoffCap, 30*time.Minute)
	def(&o.LeaseTimeout, 60*time.Second)
	def(&o.DeadRetention, 7*24*time.Hour)
	def(&o.StatusRetention, 24*time.Hour)
	def(&o.IdempotencyWindow, 24*time.Hour)
	def(&o.PruneInterval, time.Minute)
	if o.BackoffCap < o.BackoffBase {
		o.BackoffCap = o.BackoffBase
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = 25
	}
	if o.MaxBatch == 0 {
		o.MaxBatch = 10000
	}
	if o.DeadMax == 0 {
		o.DeadMax = 100000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Open creates the queue's buckets (names prefixed "queue.") in db, loads
// its counters and starts the committer and the pruner. Leases are kept in
// memory only, so every job that was leased when the previous process
// stopped is due again at once. The caller keeps ownership of db: Close
// the queue before closing it.
func Open(db *bbolt.DB, opts Options) (*Queue, error) {
	if db == nil {
		return nil, fmt.Errorf("queue: Open: nil db: %w", ErrInvalid)
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	q := &Queue{
		db:      db,
		opts:    opts,
		log:     opts.Logger.With("component", "queue"),
		ops:     make(chan *op, 4096),
		wake:    make(chan struct{}, 1),
		kick:    make(chan struct{}, 1),
		leases:  make(map[string]time.Time),
		pending: make(map[string]struct{}),
		ids:     NewIDs(opts.Now),
	}
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		b := openBuckets(tx)
		q.queued = b.due.Stats().KeyN
		q.dead = b.dead.Stats().KeyN
		// Seed the id clock from the newest stored id so that a clock that
		// went backwards across a restart still yields increasing ids.
		if k, _ := b.jobs.Cursor().Last(); k != nil {
			q.ids.Seed(string(k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("queue: open: %w", err)
	}
	q.stopCtx, q.stopFn = context.WithCancel(context.Background())
	q.commitW.Add(1)
	go q.commitLoop()
	q.loopWG.Add(1)
	go q.backgroundLoop()
	if q.queued > 0 {
		q.signal()
	}
	q.log.Info("queue opened", "jobs", q.queued, "dead", q.dead)
	return q, nil
}

// Close stops the background loop, lets the committer finish every write
// already handed to it, and stops it. Calls made after Close return
// ErrClosed. Close is idempotent and does not close the DB.
func (q *Queue) Close() error {
	q.once.Do(func() {
		q.stopFn()
		q.loopWG.Wait()
		q.closeMu.Lock()
		q.closed = true
		close(q.ops)
		q.closeMu.Unlock()
		q.commitW.Wait()
	})
	return nil
}

func (q *Queue) isClosed() bool {
	q.closeMu.RLock()
	defer q.closeMu.RUnlock()
	return q.closed
}

// Wakeup is signalled (non-blocking, capacity 1) whenever jobs may have
// become due: after an enqueue, a retry, a dead-letter retry, a lease that
// timed out, and at Open when jobs are stored. A dispatcher waits on it,
// or on a timer to NextDue, instead of polling.
func (q *Queue) Wakeup() <-chan struct{} { return q.wake }

func (q *Queue) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// backgroundLoop prunes every PruneInterval and ends expired leases at
// their deadline (waking dispatchers so that the jobs are sent again).
// Timers run on the wall clock: with an injected Now, tests call Prune and
// Lease themselves.
func (q *Queue) backgroundLoop() {
	defer q.loopWG.Done()
	ctx := q.stopCtx
	prune := time.NewTimer(q.opts.PruneInterval)
	defer prune.Stop()
	lease := time.NewTimer(time.Hour)
	defer lease.Stop()
	for {
		lease.Reset(q.nextLeaseCheck())
		select {
		case <-ctx.Done():
			return
		case <-prune.C:
			if err := q.Prune(ctx); err != nil && ctx.Err() == nil {
				q.log.Error("prune failed", "err", err)
			}
			prune.Reset(q.opts.PruneInterval)
		case <-q.kick:
		case <-lease.C:
			q.mu.Lock()
			n := q.expireLeasesLocked(q.opts.Now())
			q.mu.Unlock()
			if n > 0 {
				q.log.Warn("leases timed out, jobs due again", "jobs", n)
				q.signal()
			}
		}
	}
}

// nextLeaseCheck is how long until the earliest lease deadline.
func (q *Queue) nextLeaseCheck() time.Duration {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.leases) == 0 {
		return time.Hour
	}
	var first time.Time
	for _, d := range q.leases {
		if first.IsZero() || d.Before(first) {
			first = d
		}
	}
	return max(first.Sub(q.opts.Now()), time.Millisecond)
}

// expireLeasesLocked ends leases past their deadline; q.mu must be held.
func (q *Queue) expireLeasesLocked(now time.Time) int {
	n := 0
	for id, d := range q.leases {
		if !now.Before(d) {
			delete(q.leases, id)
			n++
		}
	}
	return n
}
