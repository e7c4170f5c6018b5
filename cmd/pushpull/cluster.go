package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/devices/kvregistry"
	"github.com/pushpull/pushpull/gateway/cluster"
	"github.com/pushpull/pushpull/gateway/cluster/kvstate"
	"github.com/pushpull/pushpull/queue/jsqueue"
	"github.com/pushpull/pushpull/web/bitrix"
)

// ClusterConfig is the [cluster] section: several nodes sharing their
// state through NATS JetStream (docs/cluster.md). An empty engine keeps
// this process alone on its bbolt file.
type ClusterConfig struct {
	Engine          string   `toml:"engine"`
	NATSURL         string   `toml:"nats_url"`
	CredentialsFile string   `toml:"nats_credentials_file"`
	CAFile          string   `toml:"nats_ca_file"`
	NodeID          string   `toml:"node_id"`
	Replicas        int      `toml:"replicas"`
	HistoryMaxAge   Duration `toml:"history_max_age"`
	HistoryMaxBytes int64    `toml:"history_max_bytes"`
	CatchUp         Duration `toml:"catch_up"`
	ConnectTimeout  Duration `toml:"connect_timeout"`
}

func defaultClusterConfig() ClusterConfig {
	return ClusterConfig{
		NATSURL: "nats://127.0.0.1:4222", Replicas: 1,
		HistoryMaxAge: dur(24 * time.Hour), HistoryMaxBytes: 256 << 20,
		CatchUp: dur(2 * time.Second), ConnectTimeout: dur(10 * time.Second),
	}
}

// nodeIDPattern keeps node ids usable in NATS subjects and KV keys.
var nodeIDPattern = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

func (c *ClusterConfig) validate() error {
	switch c.Engine {
	case "":
		return nil
	case "nats":
	default:
		return &ConfigError{Key: "cluster.engine", Message: `must be "" (one node on bbolt) or "nats"`}
	}
	switch {
	case strings.TrimSpace(c.NATSURL) == "":
		return &ConfigError{Key: "cluster.nats_url", Message: "required with engine = \"nats\""}
	case c.NodeID != "" && !nodeIDPattern.MatchString(c.NodeID):
		return &ConfigError{Key: "cluster.node_id", Message: "letters, digits, - and _ only (at most 64)"}
	case c.Replicas < 1 || c.Replicas > 5:
		return &ConfigError{Key: "cluster.replicas", Message: "must be 1 to 5"}
	case c.HistoryMaxBytes <= 0:
		return &ConfigError{Key: "cluster.history_max_bytes", Message: "must be positive"}
	case c.HistoryMaxAge.Duration <= 0:
		return &ConfigError{Key: "cluster.history_max_age", Message: "must be positive"}
	case c.ConnectTimeout.Duration <= 0:
		return &ConfigError{Key: "cluster.connect_timeout", Message: "must be positive"}
	}
	return nil
}

// nodeID returns the configured node id, or <hostname>-<random>: unique
// per process, so that a restarted node never inherits another's state.
func (c *ClusterConfig) nodeID() string {
	if c.NodeID != "" {
		return c.NodeID
	}
	host, _ := os.Hostname()
	host = regexp.MustCompile(`[^A-Za-z0-9_-]`).ReplaceAllString(host, "-")
	if len(host) > 40 {
		host = host[:40]
	}
	var b [4]byte
	_, _ = rand.Read(b[:])
	if host == "" {
		return hex.EncodeToString(b[:])
	}
	return host + "-" + hex.EncodeToString(b[:])
}

// redactURL hides credentials in NATS URLs for logs.
func redactURL(urls string) string {
	var out []string
	for _, s := range strings.Split(urls, ",") {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			out = append(out, "(unparsable)")
			continue
		}
		if u.User != nil {
			u.User = url.User("redacted")
		}
		out = append(out, u.String())
	}
	return strings.Join(out, ",")
}

// clusterConn is the node's NATS connection and what is built on it.
type clusterConn struct {
	node string
	nc   *nats.Conn
	js   jetstream.JetStream
	bus  *cluster.Bus
	acks *cluster.Acks
	// watches and presence are opened by openShared.
	watches  *kvstate.Watches
	presence *kvstate.Presence
}

// connectCluster connects to NATS and prepares the event stream (whose
// creation time is the mid epoch every node's hub must use).
func connectCluster(ctx context.Context, cfg Config, log *slog.Logger) (*clusterConn, error) {
	c := cfg.Cluster
	node := c.nodeID()
	opts := []nats.Option{
		nats.Name("pushpull " + node),
		nats.Timeout(c.ConnectTimeout.Duration),
		nats.MaxReconnects(-1),
		nats.RetryOnFailedConnect(false),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			log.Warn("NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			log.Info("NATS reconnected", "server", redactURL(nc.ConnectedUrl()))
		}),
	}
	if c.CredentialsFile != "" {
		opts = append(opts, nats.UserCredentials(c.CredentialsFile))
	}
	if c.CAFile != "" {
		opts = append(opts, nats.RootCAs(c.CAFile))
	}
	nc, err := nats.Connect(c.NATSURL, opts...)
	if err != nil {
		return nil, fmt.Errorf("cluster: connecting to NATS at %s: %w", redactURL(c.NATSURL), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("cluster: %w", err)
	}
	bus, err := cluster.Prepare(ctx, js, cluster.Options{
		Replicas: c.Replicas, MaxAge: c.HistoryMaxAge.Duration, MaxBytes: c.HistoryMaxBytes,
		Meta:   bitrix.MetaCodec{}, // Bitrix messages keep their raw body and sender across nodes
		Logger: log.With("component", "cluster"),
	})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("%w (is JetStream enabled on the NATS servers?)", err)
	}
	acks, err := cluster.NewAcks(nc, "")
	if err != nil {
		nc.Close()
		return nil, err
	}
	log.Info("cluster mode", "engine", "nats", "node", node, "nats", redactURL(c.NATSURL), "replicas", c.Replicas)
	return &clusterConn{node: node, nc: nc, js: js, bus: bus, acks: acks}, nil
}

// openClusterQueue opens the JetStream push queue with the [queue] settings.
func openClusterQueue(ctx context.Context, cc *clusterConn, cfg Config, log *slog.Logger) (*jsqueue.Queue, error) {
	q, err := jsqueue.Open(ctx, cc.js, jsqueue.Options{
		Replicas:          cfg.Cluster.Replicas,
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
		return nil, fmt.Errorf("queue: %w", err)
	}
	return q, nil
}

// openClusterDevices opens the KV device registry.
func openClusterDevices(ctx context.Context, cc *clusterConn, cfg Config) (*kvregistry.Registry, error) {
	r, err := kvregistry.Open(ctx, cc.js, kvregistry.Options{
		Replicas: cfg.Cluster.Replicas, StaleAfter: cfg.Devices.StaleAfter.Duration,
	})
	if err != nil {
		return nil, fmt.Errorf("devices: %w", err)
	}
	return r, nil
}

// openShared opens the watch tags and presence buckets.
func (cc *clusterConn) openShared(ctx context.Context, cfg Config, log *slog.Logger) error {
	var err error
	if cc.watches, err = kvstate.OpenWatches(ctx, cc.js, kvstate.WatchOptions{
		Replicas: cfg.Cluster.Replicas, Logger: log.With("component", "watches"),
	}); err != nil {
		return fmt.Errorf("cluster: watches: %w", err)
	}
	if cc.presence, err = kvstate.OpenPresence(ctx, cc.js, kvstate.PresenceOptions{
		Node: cc.node, Replicas: cfg.Cluster.Replicas, Logger: log.With("component", "presence"),
	}); err != nil {
		return fmt.Errorf("cluster: presence: %w", err)
	}
	return nil
}

func (cc *clusterConn) close() {
	if cc == nil {
		return
	}
	if cc.presence != nil {
		// Deletes this node's keys: its users go offline on the others now,
		// not after the heartbeat times out.
		_ = cc.presence.Close()
	}
	if cc.watches != nil {
		_ = cc.watches.Close()
	}
	if cc.bus != nil {
		_ = cc.bus.Close()
	}
	if cc.acks != nil {
		_ = cc.acks.Close()
	}
	if cc.nc != nil {
		cc.nc.Close()
	}
}
