package admin

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"sync"
	"time"
)

// session is one logged-in browser. The key it was opened with is kept
// (in memory only) so that removing the key from the configuration ends
// the session at its next request.
type session struct {
	key     string
	created time.Time
	used    time.Time
}

// sessions is the server-side session table, keyed by the SHA-256 of the
// cookie value so that a map lookup's timing says nothing about live ids.
type sessions struct {
	mu     sync.Mutex
	m      map[[32]byte]*session
	max    int
	idle   time.Duration
	maxAge time.Duration
	now    func() time.Time
}

func newSessions(max int, idle, maxAge time.Duration, now func() time.Time) *sessions {
	return &sessions{m: make(map[[32]byte]*session), max: max, idle: idle, maxAge: maxAge, now: now}
}

// open creates a session for key and returns the cookie value. When the
// table is full, expired sessions go first, then the least recently used:
// the bound protects memory, and an operator logging in beats a stale tab.
func (s *sessions) open(key string) (string, error) {
	var raw [32]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", err
	}
	id := base64.RawURLEncoding.EncodeToString(raw[:])
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.m) >= s.max {
		s.sweepLocked(now)
	}
	for len(s.m) >= s.max {
		var oldest [32]byte
		var at time.Time
		first := true
		for h, v := range s.m {
			if first || v.used.Before(at) {
				oldest, at, first = h, v.used, false
			}
		}
		delete(s.m, oldest)
	}
	s.m[sha256.Sum256([]byte(id))] = &session{key: key, created: now, used: now}
	return id, nil
}

// get returns the live session of cookie value id and marks it used, or
// nil. valid decides whether the session's key is still accepted.
func (s *sessions) get(id string, valid func(key string) bool) *session {
	if id == "" {
		return nil
	}
	h := sha256.Sum256([]byte(id))
	now := s.now()
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.m[h]
	if v == nil {
		return nil
	}
	if s.expired(v, now) || !valid(v.key) {
		delete(s.m, h)
		return nil
	}
	v.used = now
	return v
}

// close ends the session of cookie value id, if any.
func (s *sessions) close(id string) {
	h := sha256.Sum256([]byte(id))
	s.mu.Lock()
	delete(s.m, h)
	s.mu.Unlock()
}

// clear ends every session.
func (s *sessions) clear() {
	s.mu.Lock()
	clear(s.m)
	s.mu.Unlock()
}

func (s *sessions) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.m)
}

func (s *sessions) expired(v *session, now time.Time) bool {
	return now.Sub(v.used) >= s.idle || now.Sub(v.created) >= s.maxAge
}

func (s *sessions) sweepLocked(now time.Time) {
	for h, v := range s.m {
		if s.expired(v, now) {
			delete(s.m, h)
		}
	}
}

// limiter counts failed logins per client address in fixed windows. It
// holds at most max addresses; when full, finished windows are dropped
// first, then the oldest window, so memory stays bounded under a spray of
// addresses.
type limiter struct {
	mu     sync.Mutex
	m      map[string]*window
	max    int
	limit  int
	window time.Duration
	now    func() time.Time
}

type window struct {
	start    time.Time
	failures int
}

func newLimiter(max, limit int, w time.Duration, now func() time.Time) *limiter {
	return &limiter{m: make(map[string]*window), max: max, limit: limit, window: w, now: now}
}

// blocked reports whether ip has used up its failures, and for how long.
func (l *limiter) blocked(ip string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[ip]
	if w == nil {
		return false, 0
	}
	left := w.start.Add(l.window).Sub(now)
	if left <= 0 {
		delete(l.m, ip)
		return false, 0
	}
	return w.failures >= l.limit, left
}

// fail records a failed login from ip.
func (l *limiter) fail(ip string) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	w := l.m[ip]
	if w != nil && now.Sub(w.start) >= l.window {
		w = nil
	}
	if w == nil {
		if len(l.m) >= l.max {
			l.pruneLocked(now)
		}
		w = &window{start: now}
		l.m[ip] = w
	}
	w.failures++
}

// forget clears ip's failures after a successful login.
func (l *limiter) forget(ip string) {
	l.mu.Lock()
	delete(l.m, ip)
	l.mu.Unlock()
}

func (l *limiter) pruneLocked(now time.Time) {
	var oldest string
	var at time.Time
	for ip, w := range l.m {
		if now.Sub(w.start) >= l.window {
			delete(l.m, ip)
			continue
		}
		if oldest == "" || w.start.Before(at) {
			oldest, at = ip, w.start
		}
	}
	if len(l.m) >= l.max && oldest != "" {
		delete(l.m, oldest)
	}
}
