package kvstate

import "github.com/nats-io/nats.go/jetstream"

// The replica: what the watcher delivers and what this node writes meet
// here. Every entry carries its bucket revision, and an older revision
// never replaces a newer one, so the watcher's echo of this node's own
// writes is idempotent and never undoes a later write.

// applyEntry applies one entry delivered by the watcher.
func (w *Watches) applyEntry(e jetstream.KeyValueEntry) {
	tag, user, err := parseWatchKey(e.Key())
	if err != nil {
		w.skip(e, err)
		w.mu.Lock()
		w.seen = max(w.seen, e.Revision())
		w.mu.Unlock()
		return
	}
	p := pair{tag, user}
	var ent watchEntry
	isPut := e.Operation() == jetstream.KeyValuePut
	if isPut {
		if ent, err = decodeWatch(e.Value()); err != nil {
			// The key holds no valid watch now: whatever it held is gone.
			w.skip(e, err)
			isPut = false
		}
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.seen = max(w.seen, e.Revision())
	if t, ok := w.tombs[p]; ok && t <= w.seen && t < e.Revision() {
		delete(w.tombs, p) // every put it guarded against was delivered
	}
	if isPut {
		w.putLocked(p, storedWatch{ent, e.Revision()})
		return
	}
	if cur, ok := w.byTag[tag][user]; ok && cur.rev < e.Revision() {
		w.del(p)
	}
}

func (w *Watches) skip(e jetstream.KeyValueEntry, err error) {
	w.skipped.Add(1)
	w.o.Logger.Warn("kvstate: skipping undecodable watch entry", "bucket", w.o.Bucket,
		"key", e.Key(), "revision", e.Revision(), "err", err)
}

// putLocked stores e unless the replica already holds a newer revision of
// p or this node deleted p after e was written.
func (w *Watches) putLocked(p pair, e storedWatch) {
	if t, ok := w.tombs[p]; ok {
		if e.rev <= t {
			return
		}
		delete(w.tombs, p)
	}
	m := w.byTag[p.tag]
	if cur, ok := m[p.user]; ok && cur.rev >= e.rev {
		return
	}
	if m == nil {
		m = map[string]storedWatch{}
		w.byTag[p.tag] = m
	}
	m[p.user] = e
	u := w.byUsr[p.user]
	if u == nil {
		u = map[string]struct{}{}
		w.byUsr[p.user] = u
	}
	u[p.tag] = struct{}{}
}

// dropLocked removes p after this node deleted its key, leaving a
// tombstone when the watcher has not delivered p's last put yet.
func (w *Watches) dropLocked(p pair) bool {
	cur, ok := w.byTag[p.tag][p.user]
	if !ok {
		return false
	}
	if cur.rev > w.seen {
		w.tombs[p] = cur.rev
	}
	w.del(p)
	return true
}

func (w *Watches) del(p pair) {
	m := w.byTag[p.tag]
	delete(m, p.user)
	if len(m) == 0 {
		delete(w.byTag, p.tag)
	}
	if u := w.byUsr[p.user]; u != nil {
		delete(u, p.tag)
		if len(u) == 0 {
			delete(w.byUsr, p.user)
		}
	}
}
