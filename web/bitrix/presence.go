package bitrix

import "time"

// presence tracks, per hub channel, the live sessions and when the last one
// ended: Bitrix "online" is a live subscription now or within OnlineTTL, and
// getUsersLastSeen reports seconds since the user was last connected. It is
// guarded by Server.mu.
type presence struct {
	live   map[string]int
	seen   map[string]time.Time
	writes int
}

// seenRetention is how long a last-seen time is remembered.
const seenRetention = 30 * 24 * time.Hour

func newPresence() presence {
	return presence{live: map[string]int{}, seen: map[string]time.Time{}}
}

func (p *presence) connect(chs []string) {
	for _, ch := range chs {
		p.live[ch]++
	}
}

func (p *presence) disconnect(chs []string, now time.Time) {
	for _, ch := range chs {
		if p.live[ch] <= 1 {
			delete(p.live, ch)
		} else {
			p.live[ch]--
		}
		p.seen[ch] = now
	}
	p.prune(now)
}

// seed records t as a last-seen time unless a later one is known.
func (p *presence) seed(ch string, t time.Time, now time.Time) {
	if old, ok := p.seen[ch]; !ok || t.After(old) {
		p.seen[ch] = t
	}
	p.prune(now)
}

// lastSeen returns the live session count of ch, and how long ago its last
// session ended if known.
func (p *presence) lastSeen(ch string, now time.Time) (live int, ago time.Duration, ok bool) {
	if n := p.live[ch]; n > 0 {
		return n, 0, true
	}
	t, ok := p.seen[ch]
	if !ok {
		return 0, 0, false
	}
	return 0, max(now.Sub(t), 0), true
}

// prune drops forgotten entries every 1024 writes, so the map stays bounded
// by the channels seen within seenRetention.
func (p *presence) prune(now time.Time) {
	p.writes++
	if p.writes%1024 != 0 {
		return
	}
	for ch, t := range p.seen {
		if now.Sub(t) > seenRetention {
			delete(p.seen, ch)
		}
	}
}
