package live

import (
	"sort"
	"sync"
	"time"
)

// watches is the tag -> users registry with expiry (Bitrix's CPullWatch).
// An entry stays known (for client extension) for one TTL after it
// expired, then the janitor drops it.
type watches struct {
	mu    sync.Mutex
	byTag map[string]map[string]watchEntry // tag -> user -> entry
	byUsr map[string]map[string]struct{}   // user -> tags
}

type watchEntry struct {
	expires time.Time
	ttl     time.Duration
}

func newWatches() *watches {
	return &watches{byTag: map[string]map[string]watchEntry{}, byUsr: map[string]map[string]struct{}{}}
}

func (w *watches) set(user, tag string, e watchEntry) {
	m := w.byTag[tag]
	if m == nil {
		m = map[string]watchEntry{}
		w.byTag[tag] = m
	}
	m[user] = e
	u := w.byUsr[user]
	if u == nil {
		u = map[string]struct{}{}
		w.byUsr[user] = u
	}
	u[tag] = struct{}{}
}

func (w *watches) del(user, tag string) bool {
	m := w.byTag[tag]
	if _, ok := m[user]; !ok {
		return false
	}
	delete(m, user)
	if len(m) == 0 {
		delete(w.byTag, tag)
	}
	if u := w.byUsr[user]; u != nil {
		delete(u, tag)
		if len(u) == 0 {
			delete(w.byUsr, user)
		}
	}
	return true
}

// Add makes every user watch every tag for ttl.
func (w *watches) Add(users, tags []string, ttl time.Duration, now time.Time) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, u := range users {
		for _, t := range tags {
			w.set(u, t, watchEntry{expires: now.Add(ttl), ttl: ttl})
		}
	}
	return nil
}

// Extend renews existing (even recently expired) watches and reports, per
// tag, whether any of the users had it.
func (w *watches) Extend(users, tags []string, now time.Time) (map[string]bool, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make(map[string]bool, len(tags))
	for _, t := range tags {
		out[t] = false
		for _, u := range users {
			if e, ok := w.byTag[t][u]; ok {
				e.expires = now.Add(e.ttl)
				w.byTag[t][u] = e
				out[t] = true
			}
		}
	}
	return out, nil
}

// Known reports whether user has (or recently had) a watch on tag.
func (w *watches) Known(user, tag string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, ok := w.byTag[tag][user]
	return ok
}

// Remove deletes the users' watches on tags (all their tags when none).
func (w *watches) Remove(users, tags []string) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, u := range users {
		ts := tags
		if len(ts) == 0 {
			for t := range w.byUsr[u] {
				ts = append(ts, t)
			}
		}
		for _, t := range ts {
			if w.del(u, t) {
				n++
			}
		}
	}
	return n, nil
}

// Watchers returns the users whose watch on tag has not expired, sorted.
func (w *watches) Watchers(tag string, now time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for u, e := range w.byTag[tag] {
		if now.Before(e.expires) {
			out = append(out, u)
		}
	}
	sort.Strings(out)
	return out
}

// TagsOf returns user's unexpired tags, sorted.
func (w *watches) TagsOf(user string, now time.Time) []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []string
	for t := range w.byUsr[user] {
		if now.Before(w.byTag[t][user].expires) {
			out = append(out, t)
		}
	}
	sort.Strings(out)
	return out
}

// Sweep drops entries that expired more than one TTL ago.
func (w *watches) Sweep(now time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for t, m := range w.byTag {
		for u, e := range m {
			if now.After(e.expires.Add(e.ttl)) {
				w.del(u, t)
			}
		}
	}
}

var _ WatchStore = (*watches)(nil)
