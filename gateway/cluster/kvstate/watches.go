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

// Defaults applied by OpenWatches to zero WatchOptions fields.
const (
	DefaultWatchBucket = "pushpull_watch"
	DefaultReplicas    = 1
	DefaultMaxTTL      = 24 * time.Hour
	DefaultTimeout     = 5 * time.Second
)

// ErrTTL is returned by Add for a ttl that is not positive or exceeds
// WatchOptions.MaxTTL (the bucket forgets keys after 2×MaxTTL, so a longer
// watch would vanish while still valid).
var ErrTTL = errors.New("kvstate: watch ttl out of range")

// ErrContention is returned by Extend when a renewal kept losing its
// compare-and-swap to other writers of the same watch.
var ErrContention = errors.New("kvstate: too many concurrent writes to one watch")

// extendAttempts bounds the compare-and-swap retries of one renewal.
const extendAttempts = 4

// WatchOptions configures Watches. The zero value is usable.
type WatchOptions struct {
	// Bucket names the KV bucket. Default pushpull_watch. All nodes of a
	// cluster must use the same name.
	Bucket string
	// Replicas is the replica count of the bucket if OpenWatches creates
	// it (an existing bucket is used as it is). Default 1; use 3 on a NATS
	// cluster.
	Replicas int
	// MaxTTL is the longest ttl Add accepts; the bucket drops keys not
	// written for 2×MaxTTL, so abandoned watches vanish server-side even
	// if no node sweeps them. Default 24h; keep it equal to the live
	// service's MaxWatchTTL.
	MaxTTL time.Duration
	// Timeout bounds each call's KV writes. Default 5s.
	Timeout time.Duration
	// Logger receives skipped entries and failed sweeps. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid option, naming it.
func (o WatchOptions) Validate() error {
	switch {
	case o.Bucket != "" && !bucketName.MatchString(o.Bucket):
		return fmt.Errorf("kvstate: WatchOptions.Bucket %q: only letters, digits, '-' and '_' are allowed", o.Bucket)
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("kvstate: WatchOptions.Replicas must be 0 to 5, got %d", o.Replicas)
	case o.MaxTTL < 0 || o.MaxTTL > maxDuration/2:
		return fmt.Errorf("kvstate: WatchOptions.MaxTTL must be 0 to %v, got %v", maxDuration/2, o.MaxTTL)
	case o.MaxTTL > 0 && o.MaxTTL < time.Second:
		return fmt.Errorf("kvstate: WatchOptions.MaxTTL must be at least 1s, got %v", o.MaxTTL)
	case o.Timeout < 0:
		return fmt.Errorf("kvstate: WatchOptions.Timeout must not be negative, got %v", o.Timeout)
	}
	return nil
}

func (o WatchOptions) withDefaults() WatchOptions {
	if o.Bucket == "" {
		o.Bucket = DefaultWatchBucket
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.MaxTTL == 0 {
		o.MaxTTL = DefaultMaxTTL
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Watches is the tag watch store shared by all nodes (it satisfies
// live.WatchStore). Writes go to the bucket and to this node's replica;
// reads use the replica only. Safe for concurrent use.
type Watches struct {
	o      WatchOptions
	kv     jetstream.KeyValue
	life   context.Context
	cancel context.CancelFunc
	f      *follower

	mu    sync.RWMutex
	byTag map[string]map[string]storedWatch // tag -> user -> entry
	byUsr map[string]map[string]struct{}    // user -> tags
	// tombs holds, for pairs this node deleted before the watcher echoed
	// their last put, that put's revision: the late echo must not bring
	// the watch back.
	tombs map[pair]uint64
	seen  uint64 // highest revision the watcher delivered

	skipped   atomic.Int64
	closed    atomic.Bool
	closeOnce sync.Once
}

type pair struct{ tag, user string }

// storedWatch is a replica entry with the bucket revision it came from;
// an older revision never replaces a newer one.
type storedWatch struct {
	watchEntry
	rev uint64
}

// OpenWatches binds to the bucket (creating it when missing), loads every
// existing watch into the replica and starts following the bucket. It
// returns once the initial values are loaded, so a fresh node sees
// existing watches at once. js stays owned by the caller.
func OpenWatches(ctx context.Context, js jetstream.JetStream, o WatchOptions) (*Watches, error) {
	if js == nil {
		return nil, errors.New("kvstate: OpenWatches: js is nil")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	kv, err := bindBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket:      o.Bucket,
		Description: "pushpull tag watches",
		History:     1,
		TTL:         2 * o.MaxTTL,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kvstate: OpenWatches: bucket %s: %w", o.Bucket, err)
	}
	w := &Watches{
		o:     o,
		kv:    kv,
		byTag: map[string]map[string]storedWatch{},
		byUsr: map[string]map[string]struct{}{},
		tombs: map[pair]uint64{},
	}
	w.life, w.cancel = context.WithCancel(context.Background())
	if w.f, err = follow(w.life, ctx, kv, w.applyEntry); err != nil {
		w.cancel()
		return nil, fmt.Errorf("kvstate: OpenWatches: %w", err)
	}
	return w, nil
}

// Close stops following the bucket. The replica keeps serving reads as it
// was; writes fail with ErrClosed. Idempotent; returns nil.
func (w *Watches) Close() error {
	w.closeOnce.Do(func() {
		w.closed.Store(true)
		w.f.stop()
		w.cancel()
	})
	return nil
}

// Skipped returns how many bucket entries were skipped as undecodable.
func (w *Watches) Skipped() int64 { return w.skipped.Load() }

// Add makes every user watch every tag for ttl from now. It returns after
// every watch is stored; on error, the watches written before it stand.
func (w *Watches) Add(users, tags []string, ttl time.Duration, now time.Time) error {
	if ttl <= 0 || ttl > w.o.MaxTTL {
		return fmt.Errorf("%w: %v (max %v)", ErrTTL, ttl, w.o.MaxTTL)
	}
	ctx, cancel, err := w.op()
	if err != nil {
		return err
	}
	defer cancel()
	e := newWatch(now, ttl)
	val := encodeWatch(e)
	for _, u := range users {
		for _, t := range tags {
			rev, err := w.kv.Put(ctx, watchKey(t, u), val)
			if err != nil {
				return fmt.Errorf("kvstate: add watch: %w", err)
			}
			w.mu.Lock()
			w.putLocked(pair{t, u}, storedWatch{e, rev})
			w.mu.Unlock()
		}
	}
	return nil
}

// Extend renews existing (even recently expired) watches by their own TTL
// and reports, per tag, whether any of the users had it. Each renewal is a
// compare-and-swap on the revision the replica holds, so it never brings
// back a watch another node removed meanwhile.
func (w *Watches) Extend(users, tags []string, now time.Time) (map[string]bool, error) {
	out := make(map[string]bool, len(tags))
	type cand struct {
		p pair
		e storedWatch
	}
	var cands []cand
	w.mu.RLock()
	for _, t := range tags {
		out[t] = false
		for _, u := range users {
			if e, ok := w.byTag[t][u]; ok {
				cands = append(cands, cand{pair{t, u}, e})
			}
		}
	}
	w.mu.RUnlock()
	if len(cands) == 0 {
		return out, nil
	}
	ctx, cancel, err := w.op()
	if err != nil {
		return nil, err
	}
	defer cancel()
	for _, c := range cands {
		had, err := w.renew(ctx, c.p, c.e, now)
		if err != nil {
			return nil, fmt.Errorf("kvstate: extend watch: %w", err)
		}
		if had {
			out[c.p.tag] = true
		}
	}
	return out, nil
}

// renew writes p's entry renewed at now. On a lost compare-and-swap it
// reads the current value: gone means the watch was removed (not had).
func (w *Watches) renew(ctx context.Context, p pair, cur storedWatch, now time.Time) (bool, error) {
	key := watchKey(p.tag, p.user)
	for range extendAttempts {
		e := newWatch(now, cur.ttl)
		rev, err := w.kv.Update(ctx, key, encodeWatch(e), cur.rev)
		if err == nil {
			w.mu.Lock()
			w.putLocked(p, storedWatch{e, rev})
			w.mu.Unlock()
			return true, nil
		}
		if !isConflict(err) {
			return false, err
		}
		kve, err := w.kv.Get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		ent, err := decodeWatch(kve.Value())
		if err != nil {
			return false, nil // not a watch any more
		}
		cur = storedWatch{ent, kve.Revision()}
	}
	return false, ErrContention
}

// Known reports whether user has (or recently had) a watch on tag, by the
// replica.
func (w *Watches) Known(user, tag string) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	_, ok := w.byTag[tag][user]
	return ok
}

// Remove deletes the users' watches on tags (all of theirs the replica
// knows when tags is empty) and returns how many the replica had. The
// keys of explicitly named tags are deleted even when the replica does not
// know them yet, so a watch just added through another node goes too.
func (w *Watches) Remove(users, tags []string) (int, error) {
	// The count is taken before writing: the watcher may deliver the
	// delete before this call applies it.
	var ps []pair
	existed := map[pair]bool{}
	w.mu.RLock()
	for _, u := range users {
		if len(tags) == 0 {
			for t := range w.byUsr[u] {
				ps = append(ps, pair{t, u})
				existed[pair{t, u}] = true
			}
			continue
		}
		for _, t := range tags {
			p := pair{t, u}
			ps = append(ps, p)
			if _, ok := w.byTag[t][u]; ok {
				existed[p] = true
			}
		}
	}
	w.mu.RUnlock()
	if len(ps) == 0 {
		return 0, nil
	}
	ctx, cancel, err := w.op()
	if err != nil {
		return 0, err
	}
	defer cancel()
	n := 0
	for _, p := range ps {
		// Delete, not Purge: with one revision per key both leave one
		// marker, and the bucket's MaxAge removes markers anyway.
		if err := w.kv.Delete(ctx, watchKey(p.tag, p.user)); err != nil {
			return n, fmt.Errorf("kvstate: remove watch: %w", err)
		}
		w.mu.Lock()
		w.dropLocked(p)
		w.mu.Unlock()
		if existed[p] {
			n++
			delete(existed, p) // a pair named twice counts once
		}
	}
	return n, nil
}

// Watchers returns the users whose watch on tag has not expired, sorted.
func (w *Watches) Watchers(tag string, now time.Time) []string {
	w.mu.RLock()
	var out []string
	for u, e := range w.byTag[tag] {
		if now.Before(e.expires) {
			out = append(out, u)
		}
	}
	w.mu.RUnlock()
	slices.Sort(out)
	return out
}

// TagsOf returns user's unexpired tags, sorted.
func (w *Watches) TagsOf(user string, now time.Time) []string {
	w.mu.RLock()
	var out []string
	for t := range w.byUsr[user] {
		if now.Before(w.byTag[t][user].expires) {
			out = append(out, t)
		}
	}
	w.mu.RUnlock()
	slices.Sort(out)
	return out
}

// Sweep drops replica entries that expired more than one TTL ago and
// deletes their keys, each only if unchanged since (so a renewal through
// another node survives). Deleting is best effort: it stops at the first
// failure other than a lost compare-and-swap, so a NATS outage costs one
// timeout, and the entries are dropped from the replica regardless. Every
// node may sweep the same keys; the losers' compare-and-swap just fails.
func (w *Watches) Sweep(now time.Time) {
	type old struct {
		p   pair
		rev uint64
	}
	var olds []old
	w.mu.Lock()
	for t, m := range w.byTag {
		for u, e := range m {
			if now.After(e.expires.Add(e.ttl)) {
				olds = append(olds, old{pair{t, u}, e.rev})
				w.dropLocked(pair{t, u})
			}
		}
	}
	for p, rev := range w.tombs {
		if rev <= w.seen {
			delete(w.tombs, p)
		}
	}
	w.mu.Unlock()
	if len(olds) == 0 || w.closed.Load() {
		return
	}
	ctx, cancel := context.WithTimeout(w.life, w.o.Timeout)
	defer cancel()
	for _, o := range olds {
		err := w.kv.Delete(ctx, watchKey(o.p.tag, o.p.user), jetstream.LastRevision(o.rev))
		if err != nil && !isConflict(err) {
			w.o.Logger.Warn("kvstate: sweeping expired watches failed; the bucket's MaxAge will drop them",
				"bucket", w.o.Bucket, "left", len(olds), "err", err)
			return
		}
	}
}

// op returns the context for one call's writes.
func (w *Watches) op() (context.Context, context.CancelFunc, error) {
	if w.closed.Load() {
		return nil, nil, ErrClosed
	}
	ctx, cancel := context.WithTimeout(w.life, w.o.Timeout)
	return ctx, cancel, nil
}
