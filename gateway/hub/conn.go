package hub

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"
)

// Transport is what a WebSocket, SSE or similar connection looks like to the
// hub. The hub calls WriteFrame from one goroutine at a time.
type Transport interface {
	// WriteFrame writes one frame. It must return once ctx is done (the hub
	// cancels it on close and after Options.WriteTimeout) and must not
	// retain frame after returning: frames may be shared or reused.
	WriteFrame(ctx context.Context, frame []byte) error
	// Close closes the connection with a close code and reason. It must be
	// idempotent and safe to call while WriteFrame runs.
	Close(code int, reason string) error
}

// ConnInfo describes a connection for the caller's stats and presence.
type ConnInfo struct {
	User      string // user id the connection authenticated as
	Client    string // client kind (web, mobile, desktop)
	Transport string // websocket, sse, ...; empty means websocket
	// Protocol is the wire protocol, a metrics label: native, or
	// bitrix_v3 (text), bitrix_v4 (binary), bitrix_v5 (JSON-RPC). Empty
	// means native.
	Protocol string
}

// Conn is one live connection: its subscriptions, a bounded queue of what is
// to be written, and a writer goroutine that exists only while the queue is
// not empty.
type Conn struct {
	hub  *Hub
	t    Transport
	f    Format
	info ConnInfo
	reg  *shard // the shard whose conns set holds c

	mu       sync.Mutex
	subs     []*channel
	queue    []item
	replayed int    // queued items exempt from QueueSize (replay, first frame)
	lastPub  uint64 // seq of the last publish delivered to c
	started  bool   // Start was called: the writer may run
	writing  bool   // a writer goroutine owns the queue (or the close)
	closing  bool
	code     int
	reason   string
	cancel   context.CancelFunc // of the write in flight
	done     chan struct{}
}

// item is one queued write: an event on a channel, or a raw frame (ev nil).
type item struct {
	ev  *Event
	ch  *channel
	raw []byte
}

// NewConn registers a connection writing to t in format f. It holds no
// subscription until Subscribe and writes nothing until Start.
func (h *Hub) NewConn(t Transport, f Format, info ConnInfo) *Conn {
	c := &Conn{hub: h, t: t, f: f, info: info, done: make(chan struct{})}
	h.countOpened(info)
	c.reg = h.shards[int(h.connSeq.Add(1)%uint64(len(h.shards)))]
	c.reg.mu.Lock()
	c.reg.conns[c] = struct{}{}
	c.reg.mu.Unlock()
	return c
}

// Info returns the ConnInfo given to NewConn.
func (c *Conn) Info() ConnInfo { return c.info }

// Done is closed once the connection is closed, removed from the hub, its
// transport closed and its writer stopped.
func (c *Conn) Done() <-chan struct{} { return c.done }

// CloseCode returns the code and reason the connection was closed with, or
// (0, "") while it is open.
func (c *Conn) CloseCode() (int, string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.code, c.reason
}

// Start writes first (e.g. a welcome frame; nil for none) ahead of anything
// queued, then lets the writer drain the queue. Later calls do nothing.
func (c *Conn) Start(first []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started || c.closing {
		return
	}
	c.started = true
	if first != nil {
		c.queue = slices.Insert(c.queue, 0, item{raw: first})
		c.replayed++
	}
	c.kickLocked()
}

// Send queues a raw frame (pong, resync, ...) in order with the events. It
// reports false when the connection is closed, or closes it as a slow
// consumer because its queue is full.
func (c *Conn) Send(frame []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	return c.enqueueLocked(item{raw: frame})
}

// Close closes the connection: it drops what is queued, removes c from the
// hub, closes the transport with code and reason, and returns once the
// writer has stopped. Idempotent; later calls wait and keep the first code.
// It must not be called from the Transport's own methods.
func (c *Conn) Close(code int, reason string) {
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		<-c.done
		return
	}
	c.beginCloseLocked(code, reason)
	if c.writing {
		c.mu.Unlock()
		// Unblocks a write that ignores its cancelled context; the writer
		// finishes the close.
		_ = c.t.Close(code, reason)
		<-c.done
		return
	}
	c.writing = true
	c.mu.Unlock()
	c.finish()
}

// deliver queues ev published on ch unless c already got it through another
// channel of the same publish. The caller holds Hub.pubMu and ch.shard.mu:
// publishes are serialised, so a repeat of the same seq is always the
// previous delivery.
func (c *Conn) deliver(ev *Event, ch *channel, seq uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closing {
		return false
	}
	if c.lastPub == seq {
		return true
	}
	c.lastPub = seq
	if !c.enqueueLocked(item{ev: ev, ch: ch}) {
		return false
	}
	c.hub.delivered.Add(1)
	return true
}

// enqueueLocked appends it, or closes c as a slow consumer when its queue is
// full. It never blocks: the close itself is finished by the writer
// goroutine because the caller may hold shard locks.
func (c *Conn) enqueueLocked(it item) bool {
	if len(c.queue) >= c.hub.opts.QueueSize+c.replayed {
		c.hub.slowClosed.Add(1)
		c.hub.droppedSlow.Add(uint64(len(c.queue)) + 1)
		c.hub.log.Info("hub: closing slow consumer",
			slog.String("user", c.info.User), slog.String("client", c.info.Client),
			slog.String("transport", c.info.Transport), slog.Int("queued", len(c.queue)))
		c.beginCloseLocked(CloseSlowConsumer, "slow consumer")
		if !c.writing {
			c.writing = true
			c.hub.writers.Add(1) // run takes it back
			go c.run()
		}
		return false
	}
	c.queue = append(c.queue, it)
	c.kickLocked()
	return true
}

// kickLocked starts the writer when there is something to write.
func (c *Conn) kickLocked() {
	if c.started && !c.writing && len(c.queue) > 0 {
		c.writing = true
		o := &c.hub.opts
		if n := c.hub.writers.Add(1); o.CoalesceDelay > 0 && n > int64(o.CoalesceAbove) {
			// Many connections are being written: let more events join
			// this one's frame before writing (Options.CoalesceDelay).
			time.AfterFunc(o.CoalesceDelay, c.run)
			return
		}
		go c.run()
	}
}

func (c *Conn) beginCloseLocked(code int, reason string) {
	c.closing = true
	c.code, c.reason = code, reason
	clear(c.queue)
	c.queue = nil
	c.replayed = 0
	if c.cancel != nil {
		c.cancel()
	}
}

// finish completes a close; exactly one goroutine calls it, the one that
// set writing while closing.
func (c *Conn) finish() {
	c.hub.detach(c)
	c.mu.Lock()
	code, reason := c.code, c.reason
	c.mu.Unlock()
	_ = c.t.Close(code, reason)
	close(c.done)
}

// detach removes c from its channels and from the hub's registry.
func (h *Hub) detach(c *Conn) {
	c.mu.Lock()
	subs := c.subs
	c.mu.Unlock()
	idx := make([]int, 0, len(subs)+1)
	idx = append(idx, c.reg.idx)
	for _, ch := range subs {
		idx = append(idx, ch.shard.idx)
	}
	slices.Sort(idx)
	idx = slices.Compact(idx)
	for _, i := range idx {
		h.shards[i].mu.Lock()
	}
	for _, ch := range subs {
		delete(ch.subs, c)
		ch.shard.removeIfIdle(ch)
	}
	delete(c.reg.conns, c)
	c.mu.Lock()
	c.subs = nil
	c.mu.Unlock()
	h.unlock(idx)
}

// writeScratch is the writer's reusable memory, pooled between bursts so an
// idle connection holds none.
type writeScratch struct {
	parts [][]byte
	buf   []byte
}

var scratchPool = sync.Pool{New: func() any { return new(writeScratch) }}

// run is the writer: it drains the queue in batches until it is empty, or
// finishes the close when the connection is closing.
func (c *Conn) run() {
	var sc *writeScratch
	defer c.hub.writers.Add(-1)
	defer func() {
		if sc != nil {
			if cap(sc.buf) > 4*c.hub.opts.MaxFrameBytes {
				sc.buf = nil
			}
			scratchPool.Put(sc)
		}
	}()
	var spare []item
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			c.finish()
			return
		}
		if len(c.queue) == 0 {
			c.writing = false
			c.queue = nil
			c.mu.Unlock()
			return
		}
		items := c.queue
		c.queue, c.replayed = spare, 0
		c.mu.Unlock()
		if sc == nil {
			sc = scratchPool.Get().(*writeScratch)
		}
		err := c.write(items, sc)
		clear(items)
		spare = items[:0]
		if err != nil {
			c.mu.Lock()
			if !c.closing {
				c.hub.log.Debug("hub: write failed", slog.String("user", c.info.User),
					slog.String("transport", c.info.Transport), slog.Any("err", err))
				c.beginCloseLocked(CloseWriteFailed, "write failed")
			}
			c.mu.Unlock()
		}
	}
}

// write renders items into frames of at most MaxFrameBytes (joining
// consecutive events; a raw frame is always written alone) and writes them.
func (c *Conn) write(items []item, sc *writeScratch) error {
	maxFrame := c.hub.opts.MaxFrameBytes
	parts, size := sc.parts[:0], 0
	defer func() { clear(parts); sc.parts = parts[:0] }()
	for _, it := range items {
		if it.ev == nil {
			if err := c.flush(parts, sc); err != nil {
				return err
			}
			parts, size = parts[:0], 0
			if err := c.writeFrame(it.raw); err != nil {
				return err
			}
			continue
		}
		b, err := it.ev.Encoded(c.f, it.ch.name)
		if err != nil {
			c.hub.log.Warn("hub: cannot encode event", slog.String("format", c.f.Name()),
				slog.String("id", it.ev.ID), slog.Any("err", err))
			continue
		}
		if len(parts) > 0 && size+len(b) > maxFrame {
			if err := c.flush(parts, sc); err != nil {
				return err
			}
			parts, size = parts[:0], 0
		}
		parts = append(parts, b)
		size += len(b) + 1
	}
	return c.flush(parts, sc)
}

func (c *Conn) flush(parts [][]byte, sc *writeScratch) error {
	switch len(parts) {
	case 0:
		return nil
	case 1:
		return c.writeFrame(parts[0])
	}
	sc.buf = c.f.Join(sc.buf[:0], parts)
	return c.writeFrame(sc.buf)
}

// writeFrame writes one frame within WriteTimeout; Close cancels it.
func (c *Conn) writeFrame(frame []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), c.hub.opts.WriteTimeout)
	defer cancel()
	c.mu.Lock()
	if c.closing {
		c.mu.Unlock()
		return ErrClosed
	}
	c.cancel = cancel
	c.mu.Unlock()
	err := c.t.WriteFrame(ctx, frame)
	c.mu.Lock()
	c.cancel = nil
	c.mu.Unlock()
	return err
}
