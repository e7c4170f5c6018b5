package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/metrics"
)

// buildEmbedded opens the bbolt file with the queue and the registry in
// it: one node, nothing else needed.
func (a *app) buildEmbedded(cfg Config, log *slog.Logger) error {
	dbPath := filepath.Join(cfg.Server.DataDir, dbFile)
	var err error
	if a.db, err = openDB(dbPath); err != nil {
		return err
	}
	q, err := queue.Open(a.db, queue.Options{
		BackoffBase:       cfg.Queue.BackoffBase.Duration,
		BackoffCap:        cfg.Queue.BackoffCap.Duration,
		MaxAttempts:       cfg.Queue.MaxAttempts,
		LeaseTimeout:      cfg.Queue.LeaseTimeout.Duration,
		DeadRetention:     cfg.Queue.DeadRetention.Duration,
		DeadMax:           cfg.Queue.DeadMax,
		StatusRetention:   cfg.Queue.StatusRetention.Duration,
		IdempotencyWindow: cfg.Queue.IdempotencyWindow.Duration,
		Logger:            log.With("component", "queue"),
	})
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	a.queue = q
	d, err := devices.Open(a.db, devices.Options{
		StaleAfter: cfg.Devices.StaleAfter.Duration,
		Logger:     log.With("component", "devices"),
	})
	if err != nil {
		return fmt.Errorf("devices: %w", err)
	}
	a.devices = d
	return nil
}

// buildCluster connects to NATS and opens the JetStream queue and the KV
// registry; the bbolt file is not used.
func (a *app) buildCluster(cfg Config, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Cluster.ConnectTimeout.Duration+30*time.Second)
	defer cancel()
	var err error
	if a.cluster, err = connectCluster(ctx, cfg, log); err != nil {
		return err
	}
	q, err := openClusterQueue(ctx, a.cluster, cfg, log)
	if err != nil {
		return err
	}
	a.queue = q
	d, err := openClusterDevices(ctx, a.cluster, cfg)
	if err != nil {
		return err
	}
	a.devices = d
	return a.cluster.openShared(ctx, cfg, log)
}

// liveOptions points the live service at the cluster's shared parts.
func (cc *clusterConn) liveOptions(o *live.Options) {
	o.Bus = cc.bus
	o.Acks = cc.acks
	o.Watches = cc.watches
	o.Presence = cc.presence
}

// stats is the node's view of the cluster for /metrics.
func (cc *clusterConn) stats() metrics.ClusterStats {
	bs := cc.bus.Stats()
	return metrics.ClusterStats{
		EventsApplied: bs.Applied, EventsStale: bs.Stale, EventsCorrupt: bs.Corrupt,
		Connected: cc.nc.Status() == nats.CONNECTED, Nodes: len(cc.presence.Nodes()),
	}
}

// ready reports the NATS connection: a node cut off from NATS can neither
// accept pushes nor publish events.
func (cc *clusterConn) ready() error {
	if st := cc.nc.Status(); st != nats.CONNECTED {
		return errors.New("NATS " + st.String())
	}
	return nil
}
