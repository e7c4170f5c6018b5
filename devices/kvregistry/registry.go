package kvregistry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices"
)

// Default bucket names and limits applied by Open to zero Options fields.
const (
	DefaultDevicesBucket   = "pushpull_devices"
	DefaultTokensBucket    = "pushpull_tokens"
	DefaultUsersBucket     = "pushpull_users"
	DefaultReplicas        = 1
	DefaultMaxAttempts     = 32
	DefaultReadConcurrency = 16
	DefaultRepairAfter     = time.Minute
)

// ErrContention is returned when a write lost its compare-and-swap
// Options.MaxAttempts times in a row to other writers of the same keys.
// Nothing is left half-done that readers would trust; retrying later may
// succeed, so it matches devices.ErrStorage as well.
var ErrContention = fmt.Errorf("%w: kvregistry: too many concurrent writes to the same device", devices.ErrStorage)

// errConflict marks a lost compare-and-swap inside one attempt.
var errConflict = errors.New("kvregistry: conflict")

// bucketName is what JetStream accepts as a KV bucket name.
var bucketName = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// Options configures a Registry. The zero value is usable.
type Options struct {
	// DevicesBucket, TokensBucket and UsersBucket name the KV buckets.
	// Defaults pushpull_devices, pushpull_tokens and pushpull_users. All
	// nodes of a cluster must use the same names.
	DevicesBucket, TokensBucket, UsersBucket string
	// Replicas is the replica count of buckets Open creates (existing
	// buckets are used as they are). Default 1; use 3 on a NATS cluster.
	Replicas int
	// MaxAttempts bounds how often Register, Remove and RemoveToken retry
	// after losing a compare-and-swap before returning ErrContention.
	// Default 32.
	MaxAttempts int
	// ReadConcurrency is how many users ListByUsers reads at once.
	// Default 16.
	ReadConcurrency int
	// RepairAfter is how old a user index entry pointing at a missing or
	// moved device must be before a read removes it. The grace period
	// keeps a read from undoing a registration still in flight (whose
	// index entry is written before its record). Default 1 minute;
	// negative disables read repair altogether.
	RepairAfter time.Duration
	// StaleAfter removes devices whose last registration is older than
	// this (the app stopped re-registering: uninstalled, or the token
	// rotated without telling us), as the bbolt registry does. Every node
	// runs the purge every PurgeInterval; several at once are harmless.
	// 0 disables it.
	StaleAfter time.Duration
	// PurgeInterval is how often the purge runs. Default 1h.
	PurgeInterval time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives token moves and failed clean-ups. Tokens are
	// redacted. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid option, naming it.
func (o Options) Validate() error {
	for _, f := range []struct{ name, value string }{
		{"DevicesBucket", o.DevicesBucket},
		{"TokensBucket", o.TokensBucket},
		{"UsersBucket", o.UsersBucket},
	} {
		if f.value != "" && !bucketName.MatchString(f.value) {
			return fmt.Errorf("kvregistry: Options.%s %q: only letters, digits, '-' and '_' are allowed", f.name, f.value)
		}
	}
	d := o.withDefaults()
	if d.DevicesBucket == d.TokensBucket || d.DevicesBucket == d.UsersBucket || d.TokensBucket == d.UsersBucket {
		return fmt.Errorf("kvregistry: Options.DevicesBucket, TokensBucket and UsersBucket must differ, got %q, %q, %q",
			d.DevicesBucket, d.TokensBucket, d.UsersBucket)
	}
	switch {
	case o.Replicas < 0 || o.Replicas > 5:
		return fmt.Errorf("kvregistry: Options.Replicas must be 0 to 5, got %d", o.Replicas)
	case o.MaxAttempts < 0:
		return fmt.Errorf("kvregistry: Options.MaxAttempts must not be negative, got %d", o.MaxAttempts)
	case o.ReadConcurrency < 0:
		return fmt.Errorf("kvregistry: Options.ReadConcurrency must not be negative, got %d", o.ReadConcurrency)
	case o.StaleAfter < 0:
		return fmt.Errorf("kvregistry: Options.StaleAfter must not be negative, got %v", o.StaleAfter)
	case o.PurgeInterval < 0:
		return fmt.Errorf("kvregistry: Options.PurgeInterval must not be negative, got %v", o.PurgeInterval)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.DevicesBucket == "" {
		o.DevicesBucket = DefaultDevicesBucket
	}
	if o.TokensBucket == "" {
		o.TokensBucket = DefaultTokensBucket
	}
	if o.UsersBucket == "" {
		o.UsersBucket = DefaultUsersBucket
	}
	if o.Replicas == 0 {
		o.Replicas = DefaultReplicas
	}
	if o.MaxAttempts == 0 {
		o.MaxAttempts = DefaultMaxAttempts
	}
	if o.ReadConcurrency == 0 {
		o.ReadConcurrency = DefaultReadConcurrency
	}
	if o.RepairAfter == 0 {
		o.RepairAfter = DefaultRepairAfter
	}
	if o.PurgeInterval == 0 {
		o.PurgeInterval = time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Registry is the device-token registry on JetStream KV. All methods are
// safe for concurrent use, also by Registries of other processes on the
// same buckets. A write method that returns nil has been acknowledged by
// JetStream (stored on the bucket's replicas).
type Registry struct {
	opts                   Options
	devices, tokens, users jetstream.KeyValue
	nc                     *nats.Conn // for batched direct gets (multiGet)

	closeOnce sync.Once
	stop      chan struct{}
	wg        sync.WaitGroup // the purge loop
}

// Open binds the registry to its buckets, creating missing ones with
// Options.Replicas replicas and file storage. js stays owned by the
// caller.
func Open(ctx context.Context, js jetstream.JetStream, opts Options) (*Registry, error) {
	if js == nil {
		return nil, errors.New("kvregistry: Open: js is nil")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	r := &Registry{opts: opts, nc: js.Conn(), stop: make(chan struct{})}
	for _, b := range []struct {
		name string
		kv   *jetstream.KeyValue
		desc string
	}{
		{opts.DevicesBucket, &r.devices, "pushpull devices by id"},
		{opts.TokensBucket, &r.tokens, "pushpull token owners"},
		{opts.UsersBucket, &r.users, "pushpull devices by user"},
	} {
		kv, err := bindBucket(ctx, js, jetstream.KeyValueConfig{
			Bucket:      b.name,
			Description: b.desc,
			History:     1,
			Storage:     jetstream.FileStorage,
			Replicas:    opts.Replicas,
		})
		if err != nil {
			return nil, fmt.Errorf("kvregistry: Open: bucket %s: %w", b.name, err)
		}
		*b.kv = kv
	}
	if opts.StaleAfter > 0 {
		r.wg.Add(1)
		go r.purgeLoop()
	}
	return r, nil
}

// bindBucket returns the bucket, creating it when missing; a bucket
// another node created at the same moment is used as is.
func bindBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return kv, err
	}
	kv, err = js.CreateKeyValue(ctx, cfg)
	if errors.Is(err, jetstream.ErrBucketExists) {
		return js.KeyValue(ctx, cfg.Bucket)
	}
	return kv, err
}

// Close stops the background purge and waits for it; it does not close
// the connection. It is idempotent and returns nil.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		close(r.stop)
		r.wg.Wait()
	})
	return nil
}
