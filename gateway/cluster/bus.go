package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/gateway/hub"
)

// ErrInvalidOptions wraps every Options validation error.
var ErrInvalidOptions = errors.New("cluster: invalid options")

// Options configure the event stream. All nodes of a cluster must use the
// same Stream and Subject.
type Options struct {
	// Stream names the JetStream stream of events. Default
	// PUSHPULL_EVENTS.
	Stream string
	// Subject is the stream's subject. Default pushpull.events.
	Subject string
	// Replicas is the replica count of the stream when Prepare creates it
	// (an existing stream keeps its own). Default 1; 3 on a NATS cluster.
	Replicas int
	// MaxAge and MaxBytes bound what the stream retains: what a node that
	// starts can replay into its history. Defaults 24h and 256 MiB.
	MaxAge   time.Duration
	MaxBytes int64
	// ReplayTimeout bounds how long Start waits for the node to apply what
	// the stream held when it started. Default 1m.
	ReplayTimeout time.Duration
	// Meta carries hub.Event.Meta between nodes (web/bitrix.MetaCodec);
	// nil carries none.
	Meta MetaCodec
	// Now stamps events at Publish (their expiry counts from it). Default
	// time.Now.
	Now func() time.Time
	// Logger. Default: discard.
	Logger *slog.Logger
}

// Validate names the first bad field.
func (o Options) Validate() error {
	switch {
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("%w: Replicas must be 1..5, got %d", ErrInvalidOptions, o.Replicas)
	case o.MaxAge < 0:
		return fmt.Errorf("%w: MaxAge must not be negative", ErrInvalidOptions)
	case o.MaxBytes < 0:
		return fmt.Errorf("%w: MaxBytes must not be negative", ErrInvalidOptions)
	case o.ReplayTimeout < 0:
		return fmt.Errorf("%w: ReplayTimeout must not be negative", ErrInvalidOptions)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Stream == "" {
		o.Stream = "PUSHPULL_EVENTS"
	}
	if o.Subject == "" {
		o.Subject = "pushpull.events"
	}
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.MaxAge == 0 {
		o.MaxAge = 24 * time.Hour
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = 256 << 20
	}
	if o.ReplayTimeout == 0 {
		o.ReplayTimeout = time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Bus is live.Bus on a JetStream stream. Build it with Prepare (which
// gives the epoch the node's hub must be created with) then Start.
type Bus struct {
	opts   Options
	js     jetstream.JetStream
	stream jetstream.Stream
	epoch  int64

	mu      sync.Mutex
	h       *hub.Hub
	consume jetstream.ConsumeContext

	applied, stale, corrupt atomic.Uint64
	closed, started         atomic.Bool
}

// Prepare creates (or updates) the event stream and reads its epoch.
func Prepare(ctx context.Context, js jetstream.JetStream, o Options) (*Bus, error) {
	if js == nil {
		return nil, errors.New("cluster: Prepare: js is nil")
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name:        o.Stream,
		Description: "pushpull live events, in the order every node applies them",
		Subjects:    []string{o.Subject},
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      o.MaxAge,
		MaxBytes:    o.MaxBytes,
		Storage:     jetstream.FileStorage,
		Replicas:    o.Replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: event stream %s: %w", o.Stream, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("cluster: event stream %s: %w", o.Stream, err)
	}
	return &Bus{opts: o, js: js, stream: st, epoch: info.Created.Unix()}, nil
}

// Epoch is the mid epoch of the cluster: the second the event stream was
// created. Every node's hub must be created with it (hub.Options.Epoch).
// A stream deleted and created again gives a new epoch, and clients
// resynchronise, as after a single node's restart.
func (b *Bus) Epoch() int64 { return b.epoch }

// Start applies the stream to h from its first retained event, and keeps
// applying new ones until Close. It returns once h has applied every event
// the stream held when Start began (or ReplayTimeout passed, which is
// logged: the node then serves while it catches up).
func (b *Bus) Start(ctx context.Context, h *hub.Hub) error {
	if h.Epoch() != fmt.Sprintf("%010d", b.epoch) {
		return fmt.Errorf("cluster: hub epoch %s is not the stream's %d", h.Epoch(), b.epoch)
	}
	info, err := b.stream.Info(ctx)
	if err != nil {
		return fmt.Errorf("cluster: event stream: %w", err)
	}
	target := info.State.LastSeq
	cons, err := b.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{b.opts.Subject},
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	})
	if err != nil {
		return fmt.Errorf("cluster: event consumer: %w", err)
	}
	b.mu.Lock()
	b.h = h
	b.mu.Unlock()
	b.started.Store(true)
	cc, err := cons.Consume(b.apply, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		if !b.closed.Load() {
			b.opts.Logger.Warn("event stream consumer", "err", err)
		}
	}))
	if err != nil {
		return fmt.Errorf("cluster: event consumer: %w", err)
	}
	b.mu.Lock()
	b.consume = cc
	b.mu.Unlock()
	deadline := time.Now().Add(b.opts.ReplayTimeout)
	for h.LastSeq() < target {
		if time.Now().After(deadline) {
			b.opts.Logger.Warn("serving before the event history was replayed", "applied", h.LastSeq(), "target", target)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	if target > 0 {
		b.opts.Logger.Info("event history replayed", "events", b.applied.Load(), "last_seq", target)
	}
	return nil
}

// apply hands one stream entry to the hub. It runs on the consumer's
// goroutine, one entry at a time, in stream order.
func (b *Bus) apply(m jetstream.Msg) {
	md, err := m.Metadata()
	if err != nil {
		b.corrupt.Add(1)
		return
	}
	channels, ev, created, meta, err := decodeEvent(m.Data())
	if err == nil && meta != nil {
		if b.opts.Meta == nil {
			err = errors.New("entry carries meta and no MetaCodec is configured")
		} else {
			ev.Meta, err = b.opts.Meta.DecodeMeta(meta)
		}
	}
	if err != nil {
		b.corrupt.Add(1)
		b.opts.Logger.Warn("skipping an event entry", "seq", md.Sequence.Stream, "err", err)
		b.h.SkipSeq(md.Sequence.Stream)
		return
	}
	if _, err := b.h.PublishSeq(channels, ev, md.Sequence.Stream, created); err != nil {
		b.stale.Add(1) // already applied (a consumer reset re-delivers)
		return
	}
	b.applied.Add(1)
}

// Publish appends ev for channels to the stream and returns its mid once
// JetStream stored it. ev itself is not published to this node's hub: the
// node applies the stored entry like every other node, so that all apply
// in one order.
func (b *Bus) Publish(ctx context.Context, channels []string, ev *hub.Event) (string, error) {
	if b.closed.Load() {
		return "", errors.New("cluster: bus closed")
	}
	if !b.started.Load() {
		return "", errors.New("cluster: Publish before Start")
	}
	var meta []byte
	if ev.Meta != nil && b.opts.Meta != nil {
		meta, _ = b.opts.Meta.EncodeMeta(ev.Meta)
	}
	data := appendEvent(make([]byte, 0, 64+len(ev.Params)+len(ev.Extra)+len(meta)+16*len(channels)), channels, ev, b.opts.Now(), meta)
	ack, err := b.js.Publish(ctx, b.opts.Subject, data)
	if err != nil {
		return "", fmt.Errorf("cluster: publish event: %w", err)
	}
	return b.h.MID(ack.Sequence), nil
}

// Stats are the bus counters since Start.
type Stats struct {
	// Applied counts entries applied to the hub; Stale, entries it had
	// already applied; Corrupt, entries that did not decode.
	Applied, Stale, Corrupt uint64
}

// Stats returns the counters.
func (b *Bus) Stats() Stats {
	return Stats{Applied: b.applied.Load(), Stale: b.stale.Load(), Corrupt: b.corrupt.Load()}
}

// Close stops applying the stream. Idempotent.
func (b *Bus) Close() error {
	if b.closed.Swap(true) {
		return nil
	}
	b.mu.Lock()
	cc := b.consume
	b.mu.Unlock()
	if cc != nil {
		cc.Stop()
		<-cc.Closed()
	}
	return nil
}
