package hub

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultShards        = 64
	DefaultHistorySize   = 1000
	DefaultHistoryBytes  = 64 << 20
	DefaultQueueSize     = 1024
	DefaultMaxFrameBytes = 64 << 10
	DefaultWriteTimeout  = 10 * time.Second
	DefaultSweepInterval = time.Minute
	DefaultCoalesceDelay = 2 * time.Millisecond
	DefaultCoalesceAbove = 64
)

// maxEpoch is the largest epoch that fits the 10 digits of a mid.
const maxEpoch = 9_999_999_999

// ErrInvalidOptions is wrapped by every error returned from Options.Validate.
var ErrInvalidOptions = errors.New("hub: invalid options")

// Options configures a Hub. The zero value is valid: every zero field takes
// the default documented on it.
type Options struct {
	// Shards is the number of independently locked partitions of the channel
	// table. Default 64.
	Shards int
	// HistorySize bounds the events kept per channel. Default 1000.
	HistorySize int
	// HistoryBytes bounds the memory accounted to history over the whole hub
	// (split evenly between shards). Default 64 MiB.
	HistoryBytes int64
	// QueueSize is how many events a connection may have waiting before it
	// is closed as a slow consumer (4008). Default 1024.
	QueueSize int
	// MaxFrameBytes bounds the frames the writer builds by joining queued
	// events (a single larger event is still written alone). Default 64 KiB.
	MaxFrameBytes int
	// WriteTimeout bounds each frame write; a write that takes longer closes
	// the connection. Default 10s.
	WriteTimeout time.Duration
	// CoalesceDelay is how long a connection's writer waits before its
	// first write when more than CoalesceAbove connections are being
	// written at once, so that events published meanwhile join the same
	// frame. A fan-out to thousands of connections is bound by one write
	// syscall per frame per connection; under that load a few milliseconds
	// of waiting turn many frames into one. A lone connection (the usual
	// case) is written at once. Default 2ms; negative disables.
	CoalesceDelay time.Duration
	// CoalesceAbove is the number of connections being written at once
	// above which CoalesceDelay applies. Default 64.
	CoalesceAbove int
	// SweepInterval is how often expired history and idle channels are
	// dropped in the background. Default 1m.
	SweepInterval time.Duration
	// Epoch is the unix second that starts every mid (zero-padded to 10
	// digits). Default: Now() at New. Give each process run a new one:
	// clients detect lost history by the epoch changing.
	Epoch int64
	// CatchUp is how long Subscribe, Poll and Since wait for this hub to
	// reach a since mid that is ahead of it, before answering that it
	// cannot be resumed. Only a cluster node needs it: a client that moves
	// from a node to another may have seen events this node is still
	// applying from the shared log. Default 0 (do not wait).
	CatchUp time.Duration
	// Now is the hub clock (event creation and expiry). Default time.Now.
	Now func() time.Time
	// Logger receives slow-consumer and write-failure logs. Default
	// slog.Default().
	Logger *slog.Logger
}

// Validate reports the first field with an invalid value. Zero values are
// valid (they mean "default").
func (o Options) Validate() error {
	switch {
	case o.Shards < 0:
		return fmt.Errorf("%w: Shards must be >= 0, got %d", ErrInvalidOptions, o.Shards)
	case o.HistorySize < 0:
		return fmt.Errorf("%w: HistorySize must be >= 0, got %d", ErrInvalidOptions, o.HistorySize)
	case o.HistoryBytes < 0:
		return fmt.Errorf("%w: HistoryBytes must be >= 0, got %d", ErrInvalidOptions, o.HistoryBytes)
	case o.QueueSize < 0:
		return fmt.Errorf("%w: QueueSize must be >= 0, got %d", ErrInvalidOptions, o.QueueSize)
	case o.MaxFrameBytes < 0:
		return fmt.Errorf("%w: MaxFrameBytes must be >= 0, got %d", ErrInvalidOptions, o.MaxFrameBytes)
	case o.WriteTimeout < 0:
		return fmt.Errorf("%w: WriteTimeout must be >= 0, got %s", ErrInvalidOptions, o.WriteTimeout)
	case o.CoalesceAbove < 0:
		return fmt.Errorf("%w: CoalesceAbove must be >= 0, got %d", ErrInvalidOptions, o.CoalesceAbove)
	case o.SweepInterval < 0:
		return fmt.Errorf("%w: SweepInterval must be >= 0, got %s", ErrInvalidOptions, o.SweepInterval)
	case o.Epoch < 0 || o.Epoch > maxEpoch:
		return fmt.Errorf("%w: Epoch must be a unix time of at most 10 digits, got %d", ErrInvalidOptions, o.Epoch)
	}
	return nil
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.Shards == 0 {
		o.Shards = DefaultShards
	}
	if o.HistorySize == 0 {
		o.HistorySize = DefaultHistorySize
	}
	if o.HistoryBytes == 0 {
		o.HistoryBytes = DefaultHistoryBytes
	}
	if o.QueueSize == 0 {
		o.QueueSize = DefaultQueueSize
	}
	if o.MaxFrameBytes == 0 {
		o.MaxFrameBytes = DefaultMaxFrameBytes
	}
	if o.WriteTimeout == 0 {
		o.WriteTimeout = DefaultWriteTimeout
	}
	if o.SweepInterval == 0 {
		o.SweepInterval = DefaultSweepInterval
	}
	if o.CoalesceDelay == 0 {
		o.CoalesceDelay = DefaultCoalesceDelay
	}
	if o.CoalesceAbove == 0 {
		o.CoalesceAbove = DefaultCoalesceAbove
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Epoch == 0 {
		o.Epoch = o.Now().Unix()
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}
