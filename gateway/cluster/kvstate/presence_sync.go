package kvstate

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// run is the writer goroutine: it writes queued transitions when woken
// and, every Heartbeat, the heartbeat, the transitions still pending and
// the clean-up of dead nodes. After a failed write it waits for the next
// tick, so an outage costs one timeout per Heartbeat, not a busy loop.
func (p *Presence) run() {
	defer p.wg.Done()
	t := time.NewTicker(p.o.Heartbeat)
	defer t.Stop()
	failing := false
	lastCheck := time.Now()
	for {
		select {
		case <-p.stop:
			return
		case <-p.wake:
			if !failing {
				failing = !p.flush()
			}
		case <-t.C:
			p.beat()
			failing = !p.flush()
			p.reap()
			if time.Since(lastCheck) >= p.o.ReconcileEvery {
				lastCheck = time.Now()
				p.reconcile()
			}
		}
	}
}

// flush writes the pending transitions and reports whether all were
// written. A transition that failed goes back to pending unless a newer
// one for the same user arrived meanwhile.
func (p *Presence) flush() bool {
	p.pmu.Lock()
	batch := p.pending
	if len(batch) == 0 {
		p.pmu.Unlock()
		return true
	}
	p.pending = make(map[string]bool, len(batch))
	p.pmu.Unlock()

	ctx, cancel := context.WithTimeout(p.life, p.o.Timeout)
	defer cancel()
	var (
		wg       sync.WaitGroup
		sem      = make(chan struct{}, writeConcurrency)
		failed   atomic.Bool
		fmu      sync.Mutex
		firstErr error
		retry    = map[string]bool{}
	)
	for user, online := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			// After a failure the rest wait for the next tick rather than
			// for one more timeout each.
			skipped := failed.Load()
			var err error
			switch {
			case skipped:
			case online:
				_, err = p.kv.Put(ctx, userKey(p.o.Node, user), onlineValue)
			default:
				err = p.kv.Purge(ctx, userKey(p.o.Node, user), p.purge...)
			}
			if err == nil && !skipped {
				return
			}
			fmu.Lock()
			if err != nil {
				failed.Store(true)
				if firstErr == nil {
					firstErr = err
				}
			}
			retry[user] = online
			fmu.Unlock()
		})
	}
	wg.Wait()
	if len(retry) == 0 {
		return true
	}
	p.pmu.Lock()
	for u, on := range retry {
		if _, newer := p.pending[u]; !newer {
			p.pending[u] = on
		}
	}
	p.pmu.Unlock()
	p.failures.Add(1)
	p.o.Logger.Warn("kvstate: presence: writing transitions failed; retrying every heartbeat",
		"node", p.o.Node, "pending", len(retry), "err", firstErr)
	return false
}

// beat writes this node's heartbeat.
func (p *Presence) beat() {
	ctx, cancel := context.WithTimeout(p.life, p.o.Timeout)
	defer cancel()
	if _, err := p.kv.Put(ctx, heartbeatKey(p.o.Node), encodeBeat(p.o.Now())); err != nil {
		p.o.Logger.Warn("kvstate: presence: heartbeat failed", "node", p.o.Node, "err", err)
	}
}

// reap deletes the keys of nodes dead for longer than PurgeAfter. Every
// live node does it; deleting a deleted key is harmless, and the heartbeat
// is deleted only if unchanged, so a node that comes back keeps it (and
// rewrites its user keys, see applyEntry).
func (p *Presence) reap() {
	now := p.o.Now()
	type dead struct {
		node  string
		rev   uint64
		users []string
	}
	var ds []dead
	p.mu.RLock()
	for id, st := range p.nodes {
		if id == p.o.Node || (!st.beat.IsZero() && now.Sub(st.beat) <= p.o.PurgeAfter) {
			continue
		}
		d := dead{node: id, rev: st.beatRev}
		for u := range st.users {
			d.users = append(d.users, u)
		}
		ds = append(ds, d)
	}
	p.mu.RUnlock()
	if len(ds) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(p.life, p.o.Timeout)
	defer cancel()
	for _, d := range ds {
		for _, u := range d.users {
			if err := p.kv.Purge(ctx, userKey(d.node, u), p.purge...); err != nil {
				p.o.Logger.Warn("kvstate: presence: purging a dead node failed", "dead", d.node, "err", err)
				return
			}
		}
		if d.rev == 0 {
			continue
		}
		opts := append([]jetstream.KVDeleteOpt{jetstream.LastRevision(d.rev)}, p.purge...)
		if err := p.kv.Purge(ctx, heartbeatKey(d.node), opts...); err != nil && !isConflict(err) {
			p.o.Logger.Warn("kvstate: presence: purging a dead node failed", "dead", d.node, "err", err)
			return
		}
		p.o.Logger.Info("kvstate: presence: purged dead node", "dead", d.node, "users", len(d.users))
	}
}

// applyEntry applies one entry delivered by the watcher.
func (p *Presence) applyEntry(e jetstream.KeyValueEntry) {
	k, err := parsePresenceKey(e.Key())
	if err != nil {
		p.skip(e, err)
		return
	}
	put := e.Operation() == jetstream.KeyValuePut
	var beat time.Time
	if put && !k.isUser {
		if beat, err = decodeBeat(e.Value()); err != nil {
			p.skip(e, err)
			return
		}
		// A beat is never taken as newer than its arrival: a node whose
		// clock runs ahead, or a backlog delivered after a reconnect,
		// must not look alive longer than it is.
		if now := p.o.Now(); beat.After(now) {
			beat = now
		}
	}
	p.mu.Lock()
	st := p.nodes[k.node]
	if st == nil {
		if !put {
			p.mu.Unlock()
			return
		}
		st = &nodeState{users: map[string]uint64{}}
		p.nodes[k.node] = st
	}
	switch {
	case k.isUser && put:
		st.users[k.user] = e.Revision()
	case k.isUser:
		delete(st.users, k.user)
	case put:
		st.beat, st.beatRev = beat, e.Revision()
	default:
		st.beat, st.beatRev = time.Time{}, 0
	}
	if st.beat.IsZero() && len(st.users) == 0 {
		delete(p.nodes, k.node)
	}
	p.mu.Unlock()
	if k.node == p.o.Node && !put {
		p.healDeleted(k)
	}
}

// healDeleted rewrites this node's keys that another node deleted while
// this one was thought dead (partitioned longer than PurgeAfter). The
// heartbeat is rewritten by the next tick anyway.
func (p *Presence) healDeleted(k presenceKey) {
	if p.closing.Load() {
		return
	}
	p.pmu.Lock()
	n := 0
	for u := range p.mine {
		if k.isUser && u != k.user {
			continue
		}
		if _, queued := p.pending[u]; !queued {
			p.pending[u] = true
			n++
		}
	}
	p.pmu.Unlock()
	if n > 0 {
		select {
		case p.wake <- struct{}{}:
		default:
		}
	}
}

func (p *Presence) skip(e jetstream.KeyValueEntry, err error) {
	p.skipped.Add(1)
	p.o.Logger.Warn("kvstate: skipping undecodable presence entry", "bucket", p.o.Bucket,
		"key", e.Key(), "revision", e.Revision(), "err", err)
}

// reconcile drops from the replica the users of other nodes whose keys
// the bucket no longer holds. The watcher resumes where it stopped after
// a disconnection, but delete markers live only an hour: a node cut off
// longer would otherwise keep those users online (and never push them)
// until they change state. Only keys older than the listing are judged,
// so a user put while it runs is kept.
func (p *Presence) reconcile() {
	ctx, cancel := context.WithTimeout(p.life, p.o.Timeout)
	defer cancel()
	st, err := p.kv.Status(ctx)
	if err != nil {
		return
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok {
		return
	}
	upTo := bs.StreamInfo().State.LastSeq
	present := map[string]struct{}{}
	lister, err := p.kv.ListKeys(ctx)
	switch {
	case errors.Is(err, jetstream.ErrNoKeysFound):
	case err != nil:
		p.o.Logger.Warn("kvstate: presence: reconciliation skipped", "err", err)
		return
	default:
		for k := range lister.Keys() {
			present[k] = struct{}{}
		}
		if ctx.Err() != nil {
			return // an incomplete listing proves nothing
		}
	}
	dropped := 0
	p.mu.Lock()
	for id, ns := range p.nodes {
		if id == p.o.Node {
			continue
		}
		for u, rev := range ns.users {
			if _, ok := present[userKey(id, u)]; !ok && rev <= upTo {
				delete(ns.users, u)
				dropped++
			}
		}
	}
	p.mu.Unlock()
	if dropped > 0 {
		p.o.Logger.Info("kvstate: presence: dropped users whose deletion was missed", "users", dropped)
	}
}
