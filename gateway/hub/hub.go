package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Close codes used by the hub (API.md).
const (
	CloseSlowConsumer = 4008 // the connection's queue overflowed
	CloseWriteFailed  = 1011 // a frame could not be written in time
)

// ErrClosed is returned when subscribing a connection that is already closed.
var ErrClosed = errors.New("hub: connection closed")

// Hub is the in-process registry of channels, history and connections.
// Create it with New; all methods are safe for concurrent use.
type Hub struct {
	opts   Options
	epoch  string
	log    *slog.Logger
	shards []*shard

	// pubMu serialises Publish so that every connection receives events in
	// mid order across all its channels, not only per channel: a client
	// resumes from the single highest mid it saw, so an older event arriving
	// after a newer one from another shard would be skipped on resume. Shard
	// locks still keep Subscribe, Poll and Since off each other's way.
	// Lock order: pubMu, shards ascending, Conn.mu, waiter.mu.
	pubMu   sync.Mutex
	seq     atomic.Uint64 // last assigned mid counter
	floor   atomic.Uint64 // mids at or above it can be resumed (PublishSeq)
	connSeq atomic.Uint64

	slowClosed, expired, evicted atomic.Uint64
	// Event counters for metrics (Stats): publishes, events queued on
	// connections live and on resume, returned by polls, and dropped
	// with the queue of a connection cut as a slow consumer.
	published, delivered, replayed, polled, droppedSlow atomic.Uint64
	polls                                               pollCounts
	connsOpened                                         sync.Map // Label -> *counter
	// writers counts connections with a writer scheduled or running; see
	// Options.CoalesceDelay.
	writers atomic.Int64

	stop      chan struct{}
	closeOnce sync.Once
	wg        sync.WaitGroup
}

// New returns a Hub configured by o (zero fields take their defaults) and
// starts its background sweeper; Close stops it.
func New(o Options) (*Hub, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	if o.Epoch < 0 || o.Epoch > maxEpoch {
		return nil, fmt.Errorf("%w: Epoch %d (from Now) does not fit 10 digits", ErrInvalidOptions, o.Epoch)
	}
	h := &Hub{
		opts:   o,
		epoch:  formatEpoch(o.Epoch),
		log:    o.Logger,
		shards: make([]*shard, o.Shards),
		stop:   make(chan struct{}),
	}
	budget := max(o.HistoryBytes/int64(o.Shards), 1)
	for i := range h.shards {
		h.shards[i] = &shard{
			idx:    i,
			chans:  make(map[string]*channel),
			conns:  make(map[*Conn]struct{}),
			budget: budget,
		}
	}
	h.wg.Add(1)
	go h.sweeper()
	return h, nil
}

// formatEpoch renders e zero-padded to epochDigits (Validate bounds it).
func formatEpoch(e int64) string {
	s := strconv.FormatInt(e, 10)
	return strings.Repeat("0", epochDigits-len(s)) + s
}

// Epoch returns the 10-digit epoch that prefixes every mid of this hub.
func (h *Hub) Epoch() string { return h.epoch }

// Close stops the background sweeper and waits for it. Connections are left
// open (see CloseAll) and the hub stays usable, without periodic sweeping
// (expired history is still dropped lazily). Idempotent.
func (h *Hub) Close() {
	h.closeOnce.Do(func() { close(h.stop) })
	h.wg.Wait()
}

func (h *Hub) sweeper() {
	defer h.wg.Done()
	t := time.NewTicker(h.opts.SweepInterval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			h.Sweep()
		}
	}
}

// Sweep drops expired history and idle channels now, one shard at a time.
// The background sweeper calls it every Options.SweepInterval.
func (h *Hub) Sweep() {
	for _, sh := range h.shards {
		h.sweep(sh, h.opts.Now().UnixNano())
	}
}

// shardOf hashes a channel name (FNV-1a) to its shard index.
func (h *Hub) shardOf(name string) int {
	x := uint32(2166136261)
	for i := 0; i < len(name); i++ {
		x ^= uint32(name[i])
		x *= 16777619
	}
	return int(x % uint32(len(h.shards)))
}

// lockChannels locks the shards of names in ascending order (the global lock
// order) and returns their indices for unlock.
func (h *Hub) lockChannels(buf []int, names []string) []int {
	idx := buf[:0]
	for _, n := range names {
		idx = append(idx, h.shardOf(n))
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		h.shards[i].mu.Lock()
	}
	return idx
}

func (h *Hub) unlock(idx []int) {
	for i := len(idx) - 1; i >= 0; i-- {
		h.shards[idx[i]].mu.Unlock()
	}
}

// Publish assigns ev.ID and ev.Created, appends ev to the history of each
// channel (unless ev.Expiry is 0), queues it on every connection subscribed
// to those channels (once per connection, whatever the number of its
// channels among them) and wakes the polls held on them. It never blocks on
// a connection: one whose queue is full is closed with CloseSlowConsumer.
//
// reached[i] counts the live connections and held polls on channels[i] that
// the event was handed to (a connection reached through an earlier channel
// of the same publish counts again); 0 means nobody was live there.
//
// Publishing the same *Event twice panics.
func (h *Hub) Publish(channels []string, ev *Event) (mid string, reached []int) {
	if ev.seq != 0 {
		panic("hub: Event published twice")
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	reached = h.publishLocked(channels, ev, h.seq.Load()+1, h.opts.Now())
	return ev.ID, reached
}

// ErrStale is returned by PublishSeq for a sequence number the hub has
// already passed.
var ErrStale = errors.New("hub: sequence already published")

// PublishSeq publishes ev as Publish does, but with a mid counter chosen
// by the caller and the creation time the event had where it was first
// published (its expiry counts from created). It is how a node of a
// cluster applies the events of the shared, ordered log: every node gives
// an event the same mid, so a client may resume on any node. seq must be
// greater than every counter used before (ErrStale otherwise, and nothing
// is published: a redelivered log entry is a no-op). A seq that skips
// counters (the first call on a hub that joined the log late, or entries
// the log dropped while this hub was away) raises the hub's floor to
// seq-1: a client resuming from before the floor resynchronises, because
// this hub never saw those events. Publish and PublishSeq must not be
// mixed on one hub.
func (h *Hub) PublishSeq(channels []string, ev *Event, seq uint64, created time.Time) ([]int, error) {
	if ev.seq != 0 {
		panic("hub: Event published twice")
	}
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	cur := h.seq.Load()
	if seq <= cur {
		return nil, fmt.Errorf("%w: %d <= %d", ErrStale, seq, cur)
	}
	if seq > cur+1 {
		h.floor.Store(seq - 1)
	}
	return h.publishLocked(channels, ev, seq, created), nil
}

// SkipSeq records that the log entry seq holds nothing this hub can
// publish (it did not decode): the counter moves past it without raising
// the floor, since no client of any node got that entry either. A seq
// already passed is ignored.
func (h *Hub) SkipSeq(seq uint64) {
	h.pubMu.Lock()
	defer h.pubMu.Unlock()
	cur := h.seq.Load()
	if seq <= cur {
		return
	}
	if seq > cur+1 {
		h.floor.Store(seq - 1)
	}
	h.seq.Store(seq)
}

// MID returns the mid of the event with counter seq on this hub.
func (h *Hub) MID(seq uint64) string { return formatMID(h.epoch, seq) }

// LastSeq returns the counter of the last published event.
func (h *Hub) LastSeq() uint64 { return h.seq.Load() }

// publishLocked publishes ev with counter seq, created at created; the
// caller holds pubMu and seq is above h.seq.
func (h *Hub) publishLocked(channels []string, ev *Event, seq uint64, created time.Time) (reached []int) {
	reached = make([]int, len(channels))
	nowNano := h.opts.Now().UnixNano()
	createdNano := created.UnixNano()
	store := ev.Expiry > 0 && len(channels) > 0
	expires := int64(math.MaxInt64)
	if ev.Expiry < time.Duration(math.MaxInt64-createdNano) {
		expires = createdNano + int64(ev.Expiry)
	}
	if store && expires <= nowNano {
		store = false // replayed from the log after its expiry
	}
	var buf [8]int
	locked := h.lockChannels(buf[:], channels)
	h.seq.Store(seq)
	h.published.Add(1)
	ev.seq, ev.ID, ev.Created, ev.expires = seq, formatMID(h.epoch, seq), created, expires
	ev.computeSize()
	var cost int64
	if store {
		// The payload is shared by every ring that stores it: split its cost.
		cost = entryOverhead + int64(ev.size/len(channels))
	}
	for i, name := range channels {
		sh := h.shards[h.shardOf(name)]
		ch := sh.channel(name, store)
		if ch == nil {
			continue
		}
		if ch.mark == seq { // the same channel listed twice
			reached[i] = len(ch.subs) + len(ch.waiters)
			continue
		}
		if store {
			h.append(ch, ev, cost, nowNano)
		}
		n := 0
		for c := range ch.subs {
			if c.deliver(ev, ch, seq) {
				n++
			}
		}
		for w := range ch.waiters {
			w.add(ev, ch)
			n++
		}
		ch.mark = seq
		reached[i] = n
	}
	h.unlock(locked)
	return reached
}

// catchUp waits, up to Options.CatchUp, for the hub to reach sinceSeq. A
// short poll is enough: it only runs when a client is ahead of this node.
func (h *Hub) catchUp(kind sinceKind, sinceSeq uint64) {
	if kind != sinceOK || h.opts.CatchUp <= 0 || sinceSeq <= h.seq.Load() {
		return
	}
	deadline := time.Now().Add(h.opts.CatchUp)
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for sinceSeq > h.seq.Load() && time.Now().Before(deadline) {
		select {
		case <-t.C:
		case <-h.stop:
			return
		}
	}
}

// resumable reports whether a client that saw every event up to sinceSeq
// can be brought up to date from this hub's history.
func (h *Hub) resumable(kind sinceKind, sinceSeq, cur uint64) bool {
	return kind == sinceOK && sinceSeq <= cur && sinceSeq >= h.floor.Load()
}

// Resume is the outcome of Subscribe.
type Resume struct {
	// Resumed is true when since was a mid of this hub and every stored
	// event after it on the channels was still available (and replayed).
	// It is false for an empty since (a fresh connection: nothing is
	// replayed), and for a since of another epoch, malformed, ahead of the
	// hub, or older than history still held: the client must resync.
	Resumed bool
	// LastID is a mid the connection can resume from later, once it has
	// processed the replay: every event on its channels up to LastID was
	// either replayed or is not stored, and every later one is delivered
	// live.
	LastID string
	// Replayed is the number of events queued from history.
	Replayed int
}

// Subscribe registers c on channels and queues, ahead of any live event on
// them, every stored event after since (merged across channels in mid
// order, each event once). Registration and the history snapshot are atomic
// with respect to Publish, so the replay joins the live stream with no gap
// and no duplicate. Channels c already has are left as they are (and not
// replayed). Nothing is written before Start. It returns ErrClosed when c is
// closed.
func (h *Hub) Subscribe(c *Conn, channels []string, since string) (Resume, error) {
	sinceSeq, kind := parseSince(h.epoch, since)
	h.catchUp(kind, sinceSeq)
	nowNano := h.opts.Now().UnixNano()
	var buf [8]int
	locked := h.lockChannels(buf[:], channels)
	defer h.unlock(locked)
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return Resume{}, ErrClosed
	}
	cur := h.seq.Load()
	res := Resume{Resumed: h.resumable(kind, sinceSeq, cur), LastID: formatMID(h.epoch, cur)}
	var replay []delivery
	for _, name := range channels {
		ch := h.shards[h.shardOf(name)].channel(name, true)
		if _, ok := ch.subs[c]; ok {
			continue
		}
		if ch.subs == nil {
			ch.subs = make(map[*Conn]struct{})
		}
		ch.subs[c] = struct{}{}
		c.subs = append(c.subs, ch)
		if !res.Resumed {
			continue
		}
		if sinceSeq < ch.evictedSeq {
			res.Resumed = false
			continue
		}
		replay = ch.after(replay, sinceSeq, nowNano)
	}
	if !res.Resumed {
		return res, nil
	}
	replay = mergeDeliveries(replay)
	for _, d := range replay {
		c.queue = append(c.queue, item{ev: d.ev, ch: d.ch})
	}
	c.replayed += len(replay)
	res.Replayed = len(replay)
	h.replayed.Add(uint64(len(replay)))
	c.kickLocked()
	return res, nil
}

// Connections returns how many connections are subscribed to channel.
func (h *Hub) Connections(channel string) int {
	sh := h.shards[h.shardOf(channel)]
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if ch := sh.chans[channel]; ch != nil {
		return len(ch.subs)
	}
	return 0
}

// closeAllWorkers bounds how many transports CloseAll closes at once (a
// close may wait for a close handshake).
const closeAllWorkers = 16

// CloseAll closes every connection of the hub with code and reason (1012 on
// restart, 1001 on shutdown), wakes every held poll, and returns when all of
// them are closed. Connections created meanwhile are not affected.
func (h *Hub) CloseAll(code int, reason string) {
	var conns []*Conn
	for _, sh := range h.shards {
		sh.mu.Lock()
		for c := range sh.conns {
			conns = append(conns, c)
		}
		for _, ch := range sh.chans {
			for w := range ch.waiters {
				w.wakeUp()
			}
		}
		sh.mu.Unlock()
	}
	work := make(chan *Conn)
	var wg sync.WaitGroup
	for range min(closeAllWorkers, len(conns)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range work {
				c.Close(code, reason)
			}
		}()
	}
	for _, c := range conns {
		work <- c
	}
	close(work)
	wg.Wait()
}

// Stats is a snapshot of the hub's size and counters.
type Stats struct {
	Channels      int    // channels with subscribers, pollers or history
	Conns         int    // open connections
	HistoryEvents int    // stored entries (an event on n channels counts n)
	HistoryBytes  int64  // bytes accounted to history
	SlowClosed    uint64 // connections closed with CloseSlowConsumer
	Expired       uint64 // stored entries dropped at expiry
	Evicted       uint64 // stored entries dropped by the count or byte bound
	Published     uint64 // events published
	Delivered     uint64 // events queued on live connections as published
	Replayed      uint64 // events queued on connections from history (resume)
	Polled        uint64 // events returned by Poll and Since
	// DroppedSlow counts events discarded because their connection was
	// cut as a slow consumer: its queue, and the event that overflowed it.
	DroppedSlow uint64
}

// Stats returns a snapshot, taking each shard's lock in turn.
func (h *Hub) Stats() Stats {
	var s Stats
	for _, sh := range h.shards {
		sh.mu.Lock()
		s.Channels += len(sh.chans)
		s.Conns += len(sh.conns)
		s.HistoryEvents += sh.events
		s.HistoryBytes += sh.bytes
		sh.mu.Unlock()
	}
	s.SlowClosed = h.slowClosed.Load()
	s.Expired = h.expired.Load()
	s.Evicted = h.evicted.Load()
	s.Published = h.published.Load()
	s.Delivered = h.delivered.Load()
	s.Replayed = h.replayed.Load()
	s.Polled = h.polled.Load()
	s.DroppedSlow = h.droppedSlow.Load()
	return s
}
