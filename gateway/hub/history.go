package hub

import (
	"slices"
	"sync"
)

// entryOverhead approximates the bytes one stored reference to an event
// costs besides the event itself (ring slot, eviction-order slot, slack).
const entryOverhead = 48

// shard is one independently locked partition of the hub: the channels whose
// name hashes to it, and the connections registered to it for CloseAll.
type shard struct {
	mu     sync.Mutex
	idx    int
	chans  map[string]*channel
	conns  map[*Conn]struct{}
	budget int64 // history bytes allowed in this shard

	bytes  int64 // history bytes accounted in this shard
	events int   // stored entries in this shard
	// order lists stored entries oldest first, for byte-budget eviction
	// across channels. Entries whose event already left its ring (count
	// eviction, expiry) are stale and skipped; compact drops them.
	order     []orderEntry
	orderHead int
	// lostSeq is the highest seq ever evicted (not expired) from a channel
	// that has since been removed: resuming before it may have a gap.
	lostSeq uint64
}

type orderEntry struct {
	ch *channel
	ev *Event
}

// channel is one fan-out and history unit, guarded by shard.mu.
type channel struct {
	name    string
	shard   *shard
	subs    map[*Conn]struct{}
	waiters map[*waiter]struct{}

	ring []entry // stored events in seq order from ring[head]
	head int
	// evictedSeq is the highest seq dropped from this channel before its
	// expiry: a since below it means history has a gap.
	evictedSeq uint64
	// mark is the seq of the publish that last fanned out on this channel,
	// to spot a channel listed twice in one Publish.
	mark uint64
}

type entry struct {
	ev   *Event
	cost int64
}

func (sh *shard) channel(name string, create bool) *channel {
	ch := sh.chans[name]
	if ch == nil && create {
		ch = &channel{name: name, shard: sh, evictedSeq: sh.lostSeq}
		sh.chans[name] = ch
	}
	return ch
}

// live returns the stored entries, oldest first.
func (ch *channel) live() []entry { return ch.ring[ch.head:] }

func (ch *channel) idle() bool {
	return len(ch.subs) == 0 && len(ch.waiters) == 0 && ch.head == len(ch.ring)
}

// removeIfIdle drops ch from its shard when nothing refers to it any more.
func (sh *shard) removeIfIdle(ch *channel) {
	if !ch.idle() || sh.chans[ch.name] != ch {
		return
	}
	delete(sh.chans, ch.name)
	sh.lostSeq = max(sh.lostSeq, ch.evictedSeq)
}

// gapSeq is the lowest since from which ch can still be resumed.
func (sh *shard) gapSeq(ch *channel) uint64 {
	if ch == nil {
		return sh.lostSeq
	}
	return ch.evictedSeq
}

// append stores ev in ch, then enforces the count and byte bounds.
func (h *Hub) append(ch *channel, ev *Event, cost int64, now int64) {
	sh := ch.shard
	for ch.head < len(ch.ring) && ch.ring[ch.head].ev.expired(now) {
		h.dropHead(ch, now)
	}
	for len(ch.ring)-ch.head >= h.opts.HistorySize {
		h.dropHead(ch, now)
	}
	if ch.head > 32 && ch.head*2 >= len(ch.ring) {
		n := copy(ch.ring, ch.ring[ch.head:])
		clear(ch.ring[n:])
		ch.ring, ch.head = ch.ring[:n], 0
	}
	ch.ring = append(ch.ring, entry{ev: ev, cost: cost})
	sh.order = append(sh.order, orderEntry{ch: ch, ev: ev})
	sh.bytes += cost
	sh.events++
	for sh.bytes > sh.budget && sh.orderHead < len(sh.order) {
		oe := sh.order[sh.orderHead]
		sh.order[sh.orderHead] = orderEntry{}
		sh.orderHead++
		if oc := oe.ch; oc.head < len(oc.ring) && oc.ring[oc.head].ev == oe.ev {
			h.dropHead(oc, now)
			if oc != ch {
				sh.removeIfIdle(oc)
			}
		}
	}
	if stale := len(sh.order) - sh.orderHead - sh.events; stale > sh.events+1024 {
		sh.compactOrder()
	}
}

// dropHead removes the oldest stored event of ch, counting it as expired or
// evicted.
func (h *Hub) dropHead(ch *channel, now int64) {
	e := ch.ring[ch.head]
	ch.ring[ch.head] = entry{}
	ch.head++
	if ch.head == len(ch.ring) {
		ch.ring, ch.head = ch.ring[:0], 0
	}
	ch.shard.bytes -= e.cost
	ch.shard.events--
	if e.ev.expired(now) {
		h.expired.Add(1)
		return
	}
	h.evicted.Add(1)
	ch.evictedSeq = max(ch.evictedSeq, e.ev.seq)
}

// compactOrder drops stale entries from the eviction order.
func (sh *shard) compactOrder() {
	live := sh.order[:0]
	for _, oe := range sh.order[sh.orderHead:] {
		if oe.ch.holds(oe.ev) {
			live = append(live, oe)
		}
	}
	clear(sh.order[len(live):])
	sh.order, sh.orderHead = live, 0
	if cap(sh.order) > 4*len(sh.order)+1024 {
		sh.order = slices.Clip(slices.Clone(sh.order))
	}
}

// holds reports whether ev is still stored in ch.
func (ch *channel) holds(ev *Event) bool {
	live := ch.live()
	i, found := slices.BinarySearchFunc(live, ev.seq, func(e entry, seq uint64) int {
		switch {
		case e.ev.seq < seq:
			return -1
		case e.ev.seq > seq:
			return 1
		}
		return 0
	})
	return found && live[i].ev == ev
}

// after appends to dst the unexpired events of ch with seq > since.
func (ch *channel) after(dst []delivery, since uint64, now int64) []delivery {
	live := ch.live()
	i, _ := slices.BinarySearchFunc(live, since, func(e entry, seq uint64) int {
		if e.ev.seq <= seq {
			return -1
		}
		return 1
	})
	for _, e := range live[i:] {
		if !e.ev.expired(now) {
			dst = append(dst, delivery{ev: e.ev, ch: ch})
		}
	}
	return dst
}

// delivery is one event as delivered on one channel.
type delivery struct {
	ev *Event
	ch *channel
}

// mergeDeliveries sorts ds by mid and keeps the first delivery of each event.
func mergeDeliveries(ds []delivery) []delivery {
	slices.SortStableFunc(ds, func(a, b delivery) int {
		switch {
		case a.ev.seq < b.ev.seq:
			return -1
		case a.ev.seq > b.ev.seq:
			return 1
		}
		return 0
	})
	return slices.CompactFunc(ds, func(a, b delivery) bool { return a.ev == b.ev })
}

// sweep drops expired events and idle channels of sh.
func (h *Hub) sweep(sh *shard, now int64) {
	sh.mu.Lock()
	defer sh.mu.Unlock()
	for _, ch := range sh.chans {
		live := ch.live()
		kept := 0
		for _, e := range live {
			if e.ev.expired(now) {
				sh.bytes -= e.cost
				sh.events--
				h.expired.Add(1)
				continue
			}
			live[kept] = e
			kept++
		}
		n := copy(ch.ring, live[:kept])
		clear(ch.ring[n:])
		ch.ring, ch.head = ch.ring[:n], 0
		if n == 0 {
			ch.ring = nil
		}
		sh.removeIfIdle(ch)
	}
	sh.compactOrder()
}
