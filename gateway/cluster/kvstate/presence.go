package kvstate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Defaults applied by OpenPresence to zero PresenceOptions fields.
const (
	DefaultPresenceBucket = "pushpull_presence"
	DefaultHeartbeat      = 5 * time.Second
)

// markerTTL is how long the bucket keeps the marker of a deleted presence
// key: long enough for every watcher to see it, short enough that the
// bucket does not grow with every user ever seen.
const markerTTL = time.Hour

// writeConcurrency bounds the presence writes in flight at once, so a
// burst of connections after a restart is written in parallel.
const writeConcurrency = 16

// onlineValue is the value of a user key; only its presence matters.
var onlineValue = []byte{'1'}

// PresenceOptions configures Presence. Node is required.
type PresenceOptions struct {
	// Node is this node's id, unique in the cluster and stable across
	// restarts (a restart clears what the previous process left). Letters,
	// digits, '-' and '_'.
	Node string
	// Bucket names the KV bucket. Default pushpull_presence.
	Bucket string
	// Replicas is the replica count of the bucket if OpenPresence creates
	// it. Default 1; use 3 on a NATS cluster.
	Replicas int
	// Heartbeat is how often the node writes its heartbeat and retries
	// failed writes. Default 5s.
	Heartbeat time.Duration
	// DeadAfter is how old another node's last heartbeat may be before its
	// users stop counting. Default 3×Heartbeat. Node clocks must agree to
	// well within DeadAfter - Heartbeat.
	DeadAfter time.Duration
	// PurgeAfter is how long a node must be dead before live nodes delete
	// its keys. Default 10×Heartbeat, at least DeadAfter.
	PurgeAfter time.Duration
	// ReconcileEvery is how often the replica is checked against the
	// bucket's keys, dropping users whose deletion the watcher missed (a
	// node cut off from NATS for longer than the delete markers live).
	// Default 10m.
	ReconcileEvery time.Duration
	// Timeout bounds each batch of KV writes. Default 5s.
	Timeout time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives failed writes and skipped entries. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid option, naming it.
func (o PresenceOptions) Validate() error {
	switch {
	case o.Node == "":
		return errors.New("kvstate: PresenceOptions.Node is required")
	case !nodeName.MatchString(o.Node):
		return fmt.Errorf("kvstate: PresenceOptions.Node %q: only letters, digits, '-' and '_' are allowed", o.Node)
	case o.Bucket != "" && !bucketName.MatchString(o.Bucket):
		return fmt.Errorf("kvstate: PresenceOptions.Bucket %q: only letters, digits, '-' and '_' are allowed", o.Bucket)
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("kvstate: PresenceOptions.Replicas must be 0 to 5, got %d", o.Replicas)
	case o.Heartbeat < 0:
		return fmt.Errorf("kvstate: PresenceOptions.Heartbeat must not be negative, got %v", o.Heartbeat)
	case o.Timeout < 0:
		return fmt.Errorf("kvstate: PresenceOptions.Timeout must not be negative, got %v", o.Timeout)
	case o.ReconcileEvery < 0:
		return fmt.Errorf("kvstate: PresenceOptions.ReconcileEvery must not be negative, got %v", o.ReconcileEvery)
	}
	d := o.withDefaults()
	if d.DeadAfter <= d.Heartbeat {
		return fmt.Errorf("kvstate: PresenceOptions.DeadAfter must exceed Heartbeat (%v), got %v", d.Heartbeat, d.DeadAfter)
	}
	if d.PurgeAfter < d.DeadAfter {
		return fmt.Errorf("kvstate: PresenceOptions.PurgeAfter must be at least DeadAfter (%v), got %v", d.DeadAfter, d.PurgeAfter)
	}
	return nil
}

func (o PresenceOptions) withDefaults() PresenceOptions {
	if o.Bucket == "" {
		o.Bucket = DefaultPresenceBucket
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.Heartbeat == 0 {
		o.Heartbeat = DefaultHeartbeat
	}
	if o.DeadAfter == 0 {
		o.DeadAfter = 3 * o.Heartbeat
	}
	if o.PurgeAfter == 0 {
		o.PurgeAfter = max(10*o.Heartbeat, o.DeadAfter)
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.ReconcileEvery == 0 {
		o.ReconcileEvery = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Presence shares which users each node has online (it satisfies
// live.SharedPresence). SetLocal queues a transition and returns; one
// goroutine writes them. Remote and Nodes read the replica. Safe for
// concurrent use.
type Presence struct {
	o      PresenceOptions
	kv     jetstream.KeyValue
	purge  []jetstream.KVDeleteOpt // options of a user key delete
	life   context.Context
	cancel context.CancelFunc
	f      *follower

	mu    sync.RWMutex
	nodes map[string]*nodeState // by the replica

	pmu     sync.Mutex
	pending map[string]bool     // user -> state not written yet
	mine    map[string]struct{} // users online here, as last set
	wake    chan struct{}

	stop      chan struct{}
	wg        sync.WaitGroup
	closing   atomic.Bool
	skipped   atomic.Int64
	failures  atomic.Int64 // flushes that left transitions pending
	closeOnce sync.Once
}

// nodeState is one node as the replica knows it.
type nodeState struct {
	beat    time.Time // zero: no heartbeat key
	beatRev uint64
	users   map[string]uint64 // user -> revision of its key
}

// OpenPresence binds to the bucket (creating it when missing), loads it,
// deletes the user keys an earlier process with the same Node left, writes
// the first heartbeat and starts the writer. It returns once other nodes'
// users are known. js stays owned by the caller.
func OpenPresence(ctx context.Context, js jetstream.JetStream, o PresenceOptions) (*Presence, error) {
	if js == nil {
		return nil, errors.New("kvstate: OpenPresence: js is nil")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	kv, err := bindBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:         o.Bucket,
		Description:    "pushpull users online per node",
		History:        1,
		Storage:        jetstream.FileStorage,
		Replicas:       o.Replicas,
		LimitMarkerTTL: markerTTL,
	})
	if err != nil {
		return nil, fmt.Errorf("kvstate: OpenPresence: bucket %s: %w", o.Bucket, err)
	}
	p := &Presence{
		o:       o,
		kv:      kv,
		purge:   []jetstream.KVDeleteOpt{},
		nodes:   map[string]*nodeState{},
		pending: map[string]bool{},
		mine:    map[string]struct{}{},
		wake:    make(chan struct{}, 1),
		stop:    make(chan struct{}),
	}
	// A bucket created without marker TTLs (by an older version or by
	// hand) cannot take them: its markers stay until deleted by hand.
	if st, err := kv.Status(ctx); err == nil && st.LimitMarkerTTL() > 0 {
		p.purge = append(p.purge, jetstream.PurgeTTL(markerTTL))
	}
	p.life, p.cancel = context.WithCancel(context.Background())
	if p.f, err = follow(p.life, ctx, kv, p.applyEntry); err != nil {
		p.cancel()
		return nil, fmt.Errorf("kvstate: OpenPresence: %w", err)
	}
	if err := p.start(ctx); err != nil {
		p.f.stop()
		p.cancel()
		return nil, fmt.Errorf("kvstate: OpenPresence: %w", err)
	}
	p.wg.Add(1)
	go p.run()
	return p, nil
}

// start clears this node's stale user keys and writes its heartbeat.
func (p *Presence) start(ctx context.Context) error {
	p.mu.RLock()
	var stale []string
	if st := p.nodes[p.o.Node]; st != nil {
		for u := range st.users {
			stale = append(stale, u)
		}
	}
	p.mu.RUnlock()
	for _, u := range stale {
		if err := p.kv.Purge(ctx, userKey(p.o.Node, u), p.purge...); err != nil {
			return fmt.Errorf("clear stale keys of node %s: %w", p.o.Node, err)
		}
	}
	if _, err := p.kv.Put(ctx, heartbeatKey(p.o.Node), encodeBeat(p.o.Now())); err != nil {
		return fmt.Errorf("heartbeat: %w", err)
	}
	return nil
}

// Close stops the writer, deletes this node's heartbeat and user keys
// (best effort, so other nodes see its users offline at once rather than
// after DeadAfter) and stops following the bucket. Idempotent; returns
// nil. SetLocal after Close is ignored.
func (p *Presence) Close() error {
	p.closeOnce.Do(func() {
		p.closing.Store(true)
		close(p.stop)
		p.wg.Wait()
		p.leave()
		p.f.stop()
		p.cancel()
	})
	return nil
}

// leave deletes the heartbeat first: that alone makes every user of this
// node stop counting; the user keys follow.
func (p *Presence) leave() {
	ctx, cancel := context.WithTimeout(p.life, p.o.Timeout)
	defer cancel()
	if err := p.kv.Purge(ctx, heartbeatKey(p.o.Node), p.purge...); err != nil {
		p.o.Logger.Warn("kvstate: presence: deleting heartbeat on close failed; other nodes will count this node dead after DeadAfter",
			"node", p.o.Node, "err", err)
		return
	}
	users := map[string]struct{}{}
	p.pmu.Lock()
	for u := range p.mine {
		users[u] = struct{}{}
	}
	for u := range p.pending {
		users[u] = struct{}{}
	}
	p.pmu.Unlock()
	p.mu.RLock()
	if st := p.nodes[p.o.Node]; st != nil {
		for u := range st.users {
			users[u] = struct{}{}
		}
	}
	p.mu.RUnlock()
	for u := range users {
		if err := p.kv.Purge(ctx, userKey(p.o.Node, u), p.purge...); err != nil {
			p.o.Logger.Warn("kvstate: presence: deleting user keys on close failed; live nodes will purge them",
				"node", p.o.Node, "left", len(users), "err", err)
			return
		}
	}
}

// Skipped returns how many bucket entries were skipped as undecodable.
func (p *Presence) Skipped() int64 { return p.skipped.Load() }

// SetLocal records that this node now has (or no longer has) user online.
// It never waits for the network: the transition is queued (the last state
// per user wins) and written by the writer goroutine, retried every
// Heartbeat while writing fails.
func (p *Presence) SetLocal(user string, online bool) {
	if p.closing.Load() {
		return
	}
	p.pmu.Lock()
	p.pending[user] = online
	if online {
		p.mine[user] = struct{}{}
	} else {
		delete(p.mine, user)
	}
	p.pmu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// Remote reports whether another node whose heartbeat is fresher than
// DeadAfter has user online. A map lookup per known node; no I/O.
func (p *Presence) Remote(user string) bool {
	now := p.o.Now()
	p.mu.RLock()
	defer p.mu.RUnlock()
	for id, st := range p.nodes {
		if _, ok := st.users[user]; ok && id != p.o.Node && p.alive(st, now) {
			return true
		}
	}
	return false
}

// Nodes returns the ids of the live nodes, this one included, sorted.
func (p *Presence) Nodes() []string {
	now := p.o.Now()
	out := []string{p.o.Node}
	p.mu.RLock()
	for id, st := range p.nodes {
		if id != p.o.Node && p.alive(st, now) {
			out = append(out, id)
		}
	}
	p.mu.RUnlock()
	slices.Sort(out)
	return out
}

func (p *Presence) alive(st *nodeState, now time.Time) bool {
	return !st.beat.IsZero() && now.Sub(st.beat) < p.o.DeadAfter
}
