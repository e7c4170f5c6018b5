package metrics

import (
	"encoding/binary"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"
)

// Defaults of ProbeOptions.
const (
	DefaultProbeInterval = time.Second
	DefaultProbeTimeout  = 2 * time.Second
	DefaultMinFreeBytes  = 16 << 20
)

// Errors of the probe; Check wraps the cause in one of them.
var (
	// ErrDBNotWritable: the probe's write transaction failed (a closed or
	// read-only database, a read-only file system, an I/O error, ENOSPC).
	ErrDBNotWritable = errors.New("database not writable")
	// ErrDiskFull: the database's file system has less than MinFreeBytes
	// available, so the next growth of the file would fail.
	ErrDiskFull = errors.New("database disk almost full")
	// ErrProbeTimeout: the probe write did not finish within Timeout (a
	// stalled disk, or a long write transaction ahead of it).
	ErrProbeTimeout = errors.New("database write probe timed out")
	// ErrProbeClosed: Check after Close.
	ErrProbeClosed = errors.New("database write probe closed")
	// ErrInvalidOptions is wrapped by ProbeOptions.Validate errors.
	ErrInvalidOptions = errors.New("metrics: invalid options")
)

// probeBucket holds the probe's one key; nothing else reads it.
var probeBucket = []byte("pushpull_health")

// ProbeOptions configure a DBProbe. The zero value selects the defaults.
type ProbeOptions struct {
	// Interval is how long a result is reused: every readiness check and
	// scrape within it shares one write and its fsync. Default 1s.
	Interval time.Duration
	// Timeout is how long Check waits for a write before it reports
	// ErrProbeTimeout; the write goes on and its result serves later
	// calls. Default 2s.
	Timeout time.Duration
	// MinFreeBytes is the space the database's file system must have
	// available: a write that only reuses free pages of the file succeeds
	// on a full disk, so the write alone would report ready until the file
	// has to grow. Default 16 MiB; negative disables the check (and on
	// systems without statfs it is skipped).
	MinFreeBytes int64
	// Now is the clock of the result cache. Default time.Now.
	Now func() time.Time
}

// Validate names the first field out of range.
func (o ProbeOptions) Validate() error {
	switch {
	case o.Interval < 0:
		return fmt.Errorf("%w: Interval must not be negative, got %v", ErrInvalidOptions, o.Interval)
	case o.Timeout < 0:
		return fmt.Errorf("%w: Timeout must not be negative, got %v", ErrInvalidOptions, o.Timeout)
	}
	return nil
}

func (o ProbeOptions) withDefaults() ProbeOptions {
	if o.Interval == 0 {
		o.Interval = DefaultProbeInterval
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultProbeTimeout
	}
	if o.MinFreeBytes == 0 {
		o.MinFreeBytes = DefaultMinFreeBytes
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}

// DBProbe checks that the database can be written: a small write
// transaction (one key in its own bucket, committed with fsync) and the
// free space of the file system. Results are cached for Interval and one
// write runs at a time, so frequent probes cost at most one commit per
// Interval. Safe for concurrent use.
type DBProbe struct {
	db      *bolt.DB
	o       ProbeOptions
	latency prometheus.Histogram

	mu      sync.Mutex
	err     error
	at      time.Time     // when err was found; zero: never probed
	running chan struct{} // closed when the write in flight ends; nil: none
	closed  bool
	wg      sync.WaitGroup
}

// NewDBProbe returns a probe of db. It writes nothing until Check.
func NewDBProbe(db *bolt.DB, o ProbeOptions) (*DBProbe, error) {
	if db == nil {
		return nil, fmt.Errorf("%w: db is nil", ErrInvalidOptions)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &DBProbe{
		db: db, o: o.withDefaults(),
		latency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: ns, Name: "db_probe_commit_seconds",
			Help:    "Latency of the readiness probe's write transaction (one small commit with fsync): a sample of the database commit latency.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}),
	}, nil
}

// Collector exports the probe's commit latency histogram.
func (p *DBProbe) Collector() prometheus.Collector { return p.latency }

// Check returns nil when the database was writable at the last probe,
// probing again when that result is older than Interval. The error wraps
// ErrDBNotWritable, ErrDiskFull, ErrProbeTimeout or ErrProbeClosed.
func (p *DBProbe) Check() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrProbeClosed
	}
	if !p.at.IsZero() && p.o.Now().Sub(p.at) < p.o.Interval {
		err := p.err
		p.mu.Unlock()
		return err
	}
	if p.running == nil {
		p.running = make(chan struct{})
		p.wg.Add(1)
		go p.run(p.running)
	}
	running := p.running
	p.mu.Unlock()

	t := time.NewTimer(p.o.Timeout)
	defer t.Stop()
	select {
	case <-running:
	case <-t.C:
		err := fmt.Errorf("%w after %v", ErrProbeTimeout, p.o.Timeout)
		p.mu.Lock()
		if p.running == running { // still stuck: later calls get this at once
			p.err, p.at = err, p.o.Now()
		}
		p.mu.Unlock()
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// Close waits for a probe write in flight; later Checks return
// ErrProbeClosed. Idempotent. Close it before the database.
func (p *DBProbe) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *DBProbe) run(done chan struct{}) {
	defer p.wg.Done()
	err := p.probe()
	p.mu.Lock()
	p.err, p.at, p.running = err, p.o.Now(), nil
	p.mu.Unlock()
	close(done)
}

func (p *DBProbe) probe() error {
	if p.o.MinFreeBytes > 0 {
		if avail, ok := availableBytes(filepath.Dir(p.db.Path())); ok && avail < uint64(p.o.MinFreeBytes) {
			return fmt.Errorf("%w: %d bytes available, want %d", ErrDiskFull, avail, p.o.MinFreeBytes)
		}
	}
	start := time.Now()
	err := p.db.Update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(probeBucket)
		if err != nil {
			return err
		}
		var v [8]byte
		binary.BigEndian.PutUint64(v[:], uint64(time.Now().UnixNano()))
		return b.Put([]byte("probe"), v[:])
	})
	if err != nil {
		return fmt.Errorf("%w: %w", ErrDBNotWritable, err)
	}
	p.latency.Observe(time.Since(start).Seconds())
	return nil
}
