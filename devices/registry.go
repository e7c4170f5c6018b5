package devices

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"go.etcd.io/bbolt"
)

// ErrNotFound is returned when no device matches the id or token asked for.
var ErrNotFound = errors.New("devices: not found")

// ErrStorage wraps a write the database file could not take (disk full,
// file size limit, read-only file system, I/O error) after the change
// itself was valid: nothing was stored, and retrying later may succeed.
var ErrStorage = errors.New("devices: storage unavailable")

// update runs fn in a write transaction. When fn succeeded but the commit
// failed, the error is marked ErrStorage: bbolt keeps only the text of
// some file errors ("file resize error: ..."), so the class is given here.
func (r *Registry) update(fn func(*bbolt.Tx) error) error {
	applied := false
	err := r.db.Update(func(tx *bbolt.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		applied = true
		return nil
	})
	if err != nil && applied {
		return fmt.Errorf("%w: %w", ErrStorage, err)
	}
	return err
}

// Defaults applied by Open to zero Options fields.
const (
	DefaultStaleAfter    = 60 * 24 * time.Hour
	DefaultPurgeInterval = time.Hour
)

// purgeBatch bounds how many devices one purge transaction deletes, so a
// large purge does not hold bbolt's single writer lock for long.
const purgeBatch = 1000

// Options configures a Registry. The zero value is usable.
type Options struct {
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// StaleAfter is how long a device may go without re-registering before
	// Purge removes it. Apps re-register on every start, so a device silent
	// this long is almost surely uninstalled. Default 60 days.
	StaleAfter time.Duration
	// PurgeInterval is how often the background purge runs; it also runs
	// once right after Open. Zero means the default of 1 hour; a negative
	// value disables the background purge (call Purge yourself).
	PurgeInterval time.Duration
	// Logger receives one line per purge that removed devices and per token
	// that moved between devices. Tokens are redacted. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid option, naming it.
func (o Options) Validate() error {
	if o.StaleAfter < 0 {
		return fmt.Errorf("devices: Options.StaleAfter must not be negative, got %v", o.StaleAfter)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.StaleAfter == 0 {
		o.StaleAfter = DefaultStaleAfter
	}
	if o.PurgeInterval == 0 {
		o.PurgeInterval = DefaultPurgeInterval
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

// Registry is the device-token registry. All methods are safe for
// concurrent use. Every write is one bbolt transaction: when a write method
// returns nil, its effect is durable (as durable as the DB's sync settings).
type Registry struct {
	db   *bbolt.DB
	opts Options

	cancel    context.CancelFunc
	wg        sync.WaitGroup
	closeOnce sync.Once
}

// Open creates the registry's buckets in db if needed and starts the
// background purge. db stays owned by the caller; close the Registry first.
func Open(db *bbolt.DB, opts Options) (*Registry, error) {
	if db == nil {
		return nil, errors.New("devices: Open: db is nil")
	}
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	err := db.Update(func(tx *bbolt.Tx) error {
		for _, name := range []string{bucketRecords, bucketIDs, bucketTokens, bucketStale, bucketMeta} {
			if _, err := tx.CreateBucketIfNotExists([]byte(name)); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		meta := tx.Bucket([]byte(bucketMeta))
		v := meta.Get([]byte(keyVersion))
		if v == nil {
			return meta.Put([]byte(keyVersion), []byte(strconv.Itoa(schemaVersion)))
		}
		if string(v) != strconv.Itoa(schemaVersion) {
			return fmt.Errorf("schema version %q, this build reads %d", v, schemaVersion)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("devices: Open: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &Registry{db: db, opts: opts, cancel: cancel}
	if opts.PurgeInterval > 0 {
		r.wg.Add(1)
		go r.purgeLoop(ctx)
	}
	return r, nil
}

// Close stops the background purge and waits for it. It does not close the
// DB, and the registry's methods keep working against it afterwards. Close
// is idempotent and always returns nil.
func (r *Registry) Close() error {
	r.closeOnce.Do(func() {
		r.cancel()
		r.wg.Wait()
	})
	return nil
}

func (r *Registry) purgeLoop(ctx context.Context) {
	defer r.wg.Done()
	t := time.NewTicker(r.opts.PurgeInterval)
	defer t.Stop()
	for {
		if _, err := r.Purge(ctx); err != nil && ctx.Err() == nil {
			r.opts.Logger.Error("devices: purge failed", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Purge removes every device whose last registration is more than
// StaleAfter before now, and returns how many it removed. It works in
// batches of separate transactions; on error, the batches before it stay
// committed and the count says how many.
func (r *Registry) Purge(ctx context.Context) (int, error) {
	cutoff := r.opts.Now().Add(-r.opts.StaleAfter)
	total := 0
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n := 0
		err := r.update(func(tx *bbolt.Tx) error {
			s, err := openStore(tx)
			if err != nil {
				return err
			}
			var ids []string
			c := s.stale.Cursor()
			for k, _ := c.First(); k != nil && len(ids) < purgeBatch; k, _ = c.Next() {
				if len(k) < 8 || !staleKeyTime(k).Before(cutoff) {
					break
				}
				ids = append(ids, string(k[8:]))
			}
			for _, id := range ids {
				d, ok, err := s.get(id)
				if err != nil {
					return err
				}
				if !ok {
					continue
				}
				if err := s.delete(d); err != nil {
					return err
				}
			}
			n = len(ids)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("devices: purge: %w", err)
		}
		total += n
		if n < purgeBatch {
			if total > 0 {
				r.opts.Logger.InfoContext(ctx, "devices: purged stale devices", "count", total, "cutoff", cutoff)
			}
			return total, nil
		}
	}
}
