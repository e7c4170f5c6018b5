package live

import (
	"sort"
	"sync"
	"time"
)

// presence tracks, per user, live connections by client kind and
// transport, pollers whose next poll is due, and when the user was last
// seen.
type presence struct {
	mu    sync.Mutex
	users map[string]*userPresence
}

type userPresence struct {
	conns      int
	byClient   map[string]int
	pollUntil  time.Time // a poller counts as online until then
	pollClient string
	lastSeen   time.Time
	shared     bool // online as last told to the other nodes
}

// change reports whether u's online state differs from what the other
// nodes were last told, and records the new state as told.
func (u *userPresence) change(now time.Time) (changed, online bool) {
	online = u.conns > 0 || now.Before(u.pollUntil)
	if online == u.shared {
		return false, online
	}
	u.shared = online
	return true, online
}

func newPresence() *presence { return &presence{users: map[string]*userPresence{}} }

func (p *presence) get(user string) *userPresence {
	u := p.users[user]
	if u == nil {
		u = &userPresence{byClient: map[string]int{}}
		p.users[user] = u
	}
	return u
}

// admit registers a connection unless the user already has max. changed
// reports that the user just came online.
func (p *presence) admit(user, client string, max int, now time.Time) (ok, changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.get(user)
	if max > 0 && u.conns >= max {
		return false, false
	}
	u.conns++
	u.byClient[client]++
	u.lastSeen = now
	changed, _ = u.change(now)
	return true, changed
}

// release ends a connection; changed reports that the user just went
// offline.
func (p *presence) release(user, client string, now time.Time) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.get(user)
	u.conns--
	if u.byClient[client]--; u.byClient[client] <= 0 {
		delete(u.byClient, client)
	}
	u.lastSeen = now
	changed, _ = u.change(now)
	return changed
}

// polled records a poll that keeps the user online until until; changed
// reports that the user just came online.
func (p *presence) polled(user, client string, until, now time.Time) (changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.get(user)
	if until.After(u.pollUntil) {
		u.pollUntil = until
	}
	u.pollClient = client
	u.lastSeen = now
	changed, _ = u.change(now)
	return changed
}

// lapsed returns the users whose last poll lapsed since the other nodes
// were told they are online, and records them as told offline.
func (p *presence) lapsed(now time.Time) []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, u := range p.users {
		if changed, online := u.change(now); changed && !online {
			out = append(out, id)
		}
	}
	return out
}

func (p *presence) online(user string, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[user]
	return u != nil && (u.conns > 0 || now.Before(u.pollUntil))
}

// UserPresence is what the API reports for one user.
type UserPresence struct {
	Online      bool      `json:"online"`
	Connections int       `json:"connections"`
	Clients     []string  `json:"clients,omitempty"`
	LastSeen    time.Time `json:"last_seen,omitzero"`
}

func (p *presence) report(user string, now time.Time) UserPresence {
	p.mu.Lock()
	defer p.mu.Unlock()
	u := p.users[user]
	if u == nil {
		return UserPresence{}
	}
	r := UserPresence{Connections: u.conns, LastSeen: u.lastSeen}
	for c := range u.byClient {
		r.Clients = append(r.Clients, c)
	}
	polling := now.Before(u.pollUntil)
	if polling && u.byClient[u.pollClient] == 0 {
		r.Clients = append(r.Clients, u.pollClient)
	}
	sort.Strings(r.Clients)
	r.Online = u.conns > 0 || polling
	if r.Online {
		r.LastSeen = now
	}
	return r
}

// Totals is the answer of GET /api/v1/online without users.
type Totals struct {
	Users       int `json:"users"`
	Connections int `json:"connections"`
	Pollers     int `json:"pollers"`
}

func (p *presence) totals(now time.Time) Totals {
	p.mu.Lock()
	defer p.mu.Unlock()
	var t Totals
	for _, u := range p.users {
		polling := now.Before(u.pollUntil)
		if u.conns > 0 || polling {
			t.Users++
		}
		t.Connections += u.conns
		if polling {
			t.Pollers++
		}
	}
	return t
}

// sweep forgets users offline for longer than keep.
func (p *presence) sweep(now time.Time, keep time.Duration) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, u := range p.users {
		if u.conns == 0 && now.After(u.pollUntil) && !u.shared && now.Sub(u.lastSeen) > keep {
			delete(p.users, id)
		}
	}
}
