package hub

import (
	"context"
	"sync"
	"time"
)

// PollResult is what Poll and Since return.
type PollResult struct {
	// Events in mid order, each once.
	Events []*Event
	// Channels[i] is the channel Events[i] is delivered on (one of those
	// asked for), for Format.Encode / Event.Encoded.
	Channels []string
	// LastID is the mid to poll from next: every event on the channels up
	// to it is in Events or not stored.
	LastID string
	// Resumed is as in Resume: false for an empty since, and false when
	// history after since is gone (the client must resync).
	Resumed bool
}

// waiter is one held Poll. Publish hands it events under the shard lock of
// each channel it waits on; its own mutex orders publishes from different
// shards.
type waiter struct {
	wake chan struct{} // buffered 1: a pending wake-up

	mu       sync.Mutex
	got      []delivery
	limit    int
	overflow bool // more than limit events arrived: some were dropped
}

func (w *waiter) add(ev *Event, ch *channel) {
	w.mu.Lock()
	if len(w.got) < w.limit {
		w.got = append(w.got, delivery{ev: ev, ch: ch})
	} else {
		w.overflow = true
	}
	w.mu.Unlock()
	w.wakeUp()
}

func (w *waiter) wakeUp() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Since returns at once the stored events after since on channels, without
// registering anything (short polling, SSE resume). See Poll for Resumed.
func (h *Hub) Since(channels []string, since string) (PollResult, error) {
	sinceSeq, kind := parseSince(h.epoch, since)
	h.catchUp(kind, sinceSeq)
	var buf [8]int
	locked := h.lockChannels(buf[:], channels)
	res := h.readLocked(channels, sinceSeq, kind, h.opts.Now().UnixNano())
	h.unlock(locked)
	h.polled.Add(uint64(len(res.Events)))
	return res, nil
}

// readLocked collects the stored events after sinceSeq; the caller holds the
// shard locks of channels.
func (h *Hub) readLocked(channels []string, sinceSeq uint64, kind sinceKind, now int64) PollResult {
	cur := h.seq.Load()
	res := PollResult{Resumed: h.resumable(kind, sinceSeq, cur), LastID: formatMID(h.epoch, cur)}
	if !res.Resumed {
		return res
	}
	var ds []delivery
	for _, name := range channels {
		sh := h.shards[h.shardOf(name)]
		ch := sh.chans[name]
		if sinceSeq < sh.gapSeq(ch) {
			res.Resumed = false
			return res
		}
		if ch != nil {
			ds = ch.after(ds, sinceSeq, now)
		}
	}
	res.Events, res.Channels = splitDeliveries(mergeDeliveries(ds))
	return res
}

func splitDeliveries(ds []delivery) ([]*Event, []string) {
	if len(ds) == 0 {
		return nil, nil
	}
	evs := make([]*Event, len(ds))
	chs := make([]string, len(ds))
	for i, d := range ds {
		evs[i], chs[i] = d.ev, d.ch.name
	}
	return evs, chs
}

// Poll returns at once the stored events after since on channels. When
// there are none it holds until an event (stored or live-only) is published
// on any of them, wait elapses, ctx ends or CloseAll runs, and returns what
// was published meanwhile. It returns at once, without events and with
// Resumed=false, when since is not empty but cannot be resumed (the client
// must resync); an empty since waits for new events. wait <= 0 never holds.
// Poll runs on the caller's goroutine only; when ctx ends before any event
// it returns ctx.Err() with a usable LastID.
//
// Resumed is false as well when more than Options.QueueSize events arrived
// while the poll was held (some were dropped).
func (h *Hub) Poll(ctx context.Context, channels []string, since string, wait time.Duration) (PollResult, error) {
	if err := ctx.Err(); err != nil {
		return PollResult{}, err
	}
	sinceSeq, kind := parseSince(h.epoch, since)
	h.catchUp(kind, sinceSeq)
	var buf [8]int
	locked := h.lockChannels(buf[:], channels)
	res := h.readLocked(channels, sinceSeq, kind, h.opts.Now().UnixNano())
	if len(res.Events) > 0 || (kind != sinceNone && !res.Resumed) || wait <= 0 || len(channels) == 0 {
		h.unlock(locked)
		h.polled.Add(uint64(len(res.Events)))
		return res, nil
	}
	w := &waiter{wake: make(chan struct{}, 1), limit: h.opts.QueueSize}
	for _, name := range channels {
		ch := h.shards[h.shardOf(name)].channel(name, true)
		if ch.waiters == nil {
			ch.waiters = make(map[*waiter]struct{})
		}
		ch.waiters[w] = struct{}{}
	}
	h.unlock(locked)

	timer := time.NewTimer(wait)
	select {
	case <-w.wake:
	case <-timer.C:
	case <-ctx.Done():
	}
	timer.Stop()

	locked = h.lockChannels(buf[:], channels)
	for _, name := range channels {
		sh := h.shards[h.shardOf(name)]
		if ch := sh.chans[name]; ch != nil {
			delete(ch.waiters, w)
			if len(ch.waiters) == 0 {
				ch.waiters = nil
			}
			sh.removeIfIdle(ch)
		}
	}
	res.LastID = formatMID(h.epoch, h.seq.Load())
	h.unlock(locked)

	w.mu.Lock()
	got, overflow := w.got, w.overflow
	w.mu.Unlock()
	res.Events, res.Channels = splitDeliveries(mergeDeliveries(got))
	if overflow {
		res.Resumed = false
	}
	if len(res.Events) == 0 {
		if err := ctx.Err(); err != nil {
			return res, err
		}
	}
	h.polled.Add(uint64(len(res.Events)))
	return res, nil
}
