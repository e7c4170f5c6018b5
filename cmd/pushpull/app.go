package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/devices/kvregistry"
	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/push"
	gwrelay "github.com/pushpull/pushpull/gateway/relay"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/queue/jsqueue"
	"github.com/pushpull/pushpull/web"
	"github.com/pushpull/pushpull/web/admin"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
	"github.com/pushpull/pushpull/web/bitrix"
	"github.com/pushpull/pushpull/web/client"
	"github.com/pushpull/pushpull/web/metrics"
	"github.com/pushpull/pushpull/web/static"
)

// app is the composition root: everything serve builds, in the order it is
// built. close tears it down in the reverse order.
type app struct {
	log     *slog.Logger
	db      *bolt.DB     // nil in cluster mode
	cluster *clusterConn // nil unless [cluster] engine = "nats"
	queue   queueEngine
	devices deviceEngine
	hub     *hub.Hub
	provs   []providers.Provider
	push    *push.Service
	live    *live.Service
	bitrix  *bitrix.Server
	relay   *gwrelay.Service
	remover *gwrelay.Remover // nil unless relay.token_remove_callback
	tokens  *token.Issuer
	keys    *api.Keys
	metrics *metrics.Metrics
	probe   *metrics.DBProbe // database write probe of /readyz
	web     *web.Server
	errc    <-chan error
}

// queueEngine is the push queue: bbolt (one node) or JetStream (cluster).
type queueEngine interface {
	push.Queue
	api.QueueAdmin
	Stats() (queue.Stats, error)
	Close() error
}

// deviceEngine is the device registry: bbolt or JetStream KV.
type deviceEngine interface {
	push.Registry
	api.DeviceStore
	Close() error
}

var (
	_ queueEngine  = (*queue.Queue)(nil)
	_ queueEngine  = (*jsqueue.Queue)(nil)
	_ deviceEngine = (*devices.Registry)(nil)
	_ deviceEngine = (*kvregistry.Registry)(nil)
)

// build opens the database and constructs every component; nothing serves
// yet. Any failure closes what was opened and names the cause.
func build(cfg Config, log *slog.Logger) (_ *app, err error) {
	a := &app{log: log}
	defer func() {
		if err != nil {
			a.close(context.Background())
		}
	}()

	if cfg.Cluster.Engine == "nats" {
		if err := a.buildCluster(cfg, log); err != nil {
			return nil, err
		}
	} else if err := a.buildEmbedded(cfg, log); err != nil {
		return nil, err
	}

	ho := hub.Options{
		HistorySize:  cfg.Live.HistorySize,
		HistoryBytes: cfg.Live.HistoryBytes,
		QueueSize:    cfg.Live.QueueSize,
		Logger:       log.With("component", "hub"),
	}
	if a.cluster != nil {
		// Mids are the event stream's: its epoch and sequence.
		ho.Epoch, ho.CatchUp = a.cluster.bus.Epoch(), cfg.Cluster.CatchUp.Duration
	}
	if a.hub, err = hub.New(ho); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}
	if a.cluster != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		err := a.cluster.bus.Start(ctx, a.hub)
		cancel()
		if err != nil {
			return nil, err
		}
	}

	if a.provs, err = buildProviders(context.Background(), cfg, log); err != nil {
		return nil, err
	}
	a.provs = swappable(a.provs) // SIGHUP replaces credentials under the dispatcher (reload.go)
	if len(a.provs) == 0 {
		log.Warn("no [[apns.app]], [[fcm.app]] or [[hms.app]] configured: pushes are accepted and dead-lettered (no provider)")
	}
	if a.push, err = push.New(a.queue, a.devices, a.provs, push.Options{
		Workers: cfg.Push.Workers, LeaseBatch: cfg.Push.LeaseBatch,
		SendTimeout: cfg.Push.SendTimeout.Duration, DefaultExpiry: cfg.Push.DefaultExpiry.Duration,
		FeedbackURL: cfg.Push.FeedbackURL, FeedbackSecret: []byte(cfg.Push.FeedbackSecret),
		// Presence comes from the live service, built next.
		IsOnline: func(user string) bool { return a.live != nil && a.live.IsOnline(user) },
		// Dead tokens of relay jobs go back to their portal (built later,
		// before the dispatcher starts).
		OnInvalidToken: func(r push.Report) {
			if a.remover != nil {
				a.remover.OnInvalidToken(r)
			}
		},
		Logger: log.With("component", "push"),
	}); err != nil {
		return nil, fmt.Errorf("push: %w", err)
	}

	lo := live.Options{
		WatchTTL:           cfg.Live.WatchTTL.Duration,
		MaxConnsPerUser:    cfg.Client.MaxConnsPerUser,
		DefaultEventExpiry: cfg.Live.EventExpiry.Duration,
		Logger:             log.With("component", "live"),
	}
	if a.cluster != nil {
		a.cluster.liveOptions(&lo)
	}
	if a.live, err = live.New(lo, a.hub, a.push); err != nil {
		return nil, fmt.Errorf("live: %w", err)
	}

	if len(cfg.API.Keys) == 0 {
		f := filepath.Join(cfg.Server.DataDir, "api_key")
		k, created, err := generatedSecret(f)
		if err != nil {
			return nil, fmt.Errorf("api key: %w", err)
		}
		cfg.API.Keys = []string{k}
		if created {
			log.Warn("no [api] keys configured: generated one", "file", f)
		} else {
			log.Info("no [api] keys configured: using the generated key", "file", f)
		}
	}
	if cfg.Client.JWTSecret == "" {
		f := filepath.Join(cfg.Server.DataDir, "jwt_secret")
		s, _, err := generatedSecret(f)
		if err != nil {
			return nil, fmt.Errorf("jwt secret: %w", err)
		}
		cfg.Client.JWTSecret = s
		log.Info("no [client] jwt_secret configured: using the generated one", "file", f)
	}
	if a.tokens, err = token.New(token.Options{Secret: []byte(cfg.Client.JWTSecret), DefaultTTL: cfg.Client.TokenTTL.Duration}); err != nil {
		return nil, fmt.Errorf("client: %w", err)
	}

	a.web, err = web.New(web.Options{
		APIAddr: cfg.API.Addr, ClientAddr: cfg.Client.Addr,
		APITLSCert: cfg.API.TLSCert, APITLSKey: cfg.API.TLSKey,
		ClientTLSCert: cfg.Client.TLSCert, ClientTLSKey: cfg.Client.TLSKey,
		MaxBodyBytes:   cfg.API.MaxBodyBytes,
		Ready:          a.ready,
		Mappers:        []apierr.Mapper{api.MapError},
		TrustedProxies: cfg.Server.TrustedProxies,
		OwnBodyLimit:   relayRoutes(cfg.Relay),
		Version:        versionString(),
		Logger:         log,
	})
	if err != nil {
		return nil, err
	}
	a.metrics = metrics.New(versionString())
	a.metrics.WatchQueue(a.queue)
	if a.cluster != nil {
		a.metrics.WatchCluster(a.cluster.stats)
	}
	a.metrics.WatchHub(a.hub)
	a.metrics.WatchPush(a.push.ProviderStats)
	if a.db != nil {
		a.metrics.WatchDB(a.db)
		if a.probe, err = metrics.NewDBProbe(a.db, metrics.ProbeOptions{}); err != nil {
			return nil, fmt.Errorf("readiness probe: %w", err)
		}
		a.metrics.Registry.MustRegister(a.probe.Collector())
	}
	a.metrics.WatchReady(a.web.Ready)
	a.web.API.Use(a.metrics.Middleware("api"))
	a.web.Client.Use(a.metrics.Middleware("client"))
	a.web.API.GET("/metrics", a.metrics.Handler())

	a.keys = api.NewKeys(cfg.API.Keys)
	apiSrv := &api.Server{
		Queue: a.queue, Devices: a.devices, Push: a.push, Live: a.live, Tokens: a.tokens, Logger: log,
		ClientURL: clientURL(cfg.Client), PingInterval: cfg.Client.PingInterval.Duration,
		DB:     a.db, // GET /api/v1/backup (pushpull backup); nil in cluster mode
		Limits: api.Limits{MaxBodyBytes: cfg.API.MaxBodyBytes, MaxItems: cfg.API.MaxItems, MaxRecipients: cfg.API.MaxRecipients},
	}
	apiSrv.Register(a.web.API.Group("/api/v1", api.RequireKey(a.keys)))
	if cfg.Admin.Enabled {
		if _, err := admin.Register(a.web.API, admin.Deps{
			Keys: a.keys, API: apiSrv, Metrics: a.metrics.Registry, Logger: log.With("component", "admin"),
		}, admin.Options{SessionTTL: cfg.Admin.SessionTTL.Duration, MaxAge: cfg.Admin.MaxAge.Duration,
			MaxSessions: cfg.Admin.MaxSessions}); err != nil {
			return nil, fmt.Errorf("admin: %w", err)
		}
	}
	client.RegisterDevices(a.web.Client.Group(""), a.devices, a.tokens, client.DevicesOptions{})
	client.RegisterLive(a.web.Client, a.live, a.tokens, client.LiveOptions{
		AllowedOrigins: cfg.Client.AllowedOrigins, PingInterval: cfg.Client.PingInterval.Duration,
	})
	static.Register(a.web.Client)
	if cfg.Bitrix.Enabled {
		bxURL := cfg.Bitrix.PublicURL
		if bxURL == "" {
			bxURL = clientURL(cfg.Client)
		}
		zero := time.Duration(0)
		if cfg.Bitrix.TextZeroExpiryLive {
			zero = -1
		}
		deps := bitrix.Deps{Hub: a.hub, ConfigMiddleware: []echo.MiddlewareFunc{api.RequireKey(a.keys)}}
		if a.cluster != nil {
			deps.Bus = a.cluster.bus
		}
		a.bitrix, err = bitrix.Register(a.web.API, a.web.Client, deps, bitrix.Options{
			SignatureKey: cfg.Bitrix.SignatureKey, SignatureAlgo: cfg.Bitrix.SignatureAlgo,
			MaxPayload: cfg.Bitrix.MaxPayload, MaxMessagesPerRequest: cfg.Bitrix.MaxMessagesPerRequest,
			MaxChannelsPerMessage: cfg.Bitrix.MaxChannelsPerMessage, MaxConnsPerChannel: cfg.Bitrix.MaxConnsPerChannel,
			MessageTTL: cfg.Bitrix.MessageTTL.Duration, TextZeroExpiry: zero, PollHold: cfg.Bitrix.PollHold.Duration,
			PublicURL: bxURL, ServerVersion: cfg.Bitrix.ServerVersion,
			AllowedOrigins: cfg.Bitrix.AllowedOrigins, Logger: log.With("component", "bitrix"),
		})
		if err != nil {
			return nil, fmt.Errorf("bitrix: %w", err)
		}
	}
	if err := a.buildRelay(cfg); err != nil {
		return nil, err
	}
	if cfg.Demo.Enabled {
		log.Warn("[demo] enabled: anyone reaching the client listener can mint tokens and send events as any user; development only")
		static.RegisterDemo(a.web.Client, static.DemoDeps{
			Mint: func(user string) (string, error) {
				t, _, err := a.tokens.Mint(user, 0, nil, "web")
				return t, err
			},
			Send: func(ctx context.Context, user, text string) error {
				params, _ := json.Marshal(map[string]string{"text": text})
				_, err := a.live.Publish(ctx, []live.Event{{Users: []string{user}, ModuleID: "demo", Command: "message", Params: params}})
				return err
			},
		})
	}
	return a, nil
}

// ready reports whether the gateway can take work (web.Server adds
// "starting" and "draining"): the dispatcher runs and the database accepts
// a write (probed at most once a second; a full disk counts as not
// writable).
func (a *app) ready() error {
	if a.push == nil || !a.push.Running() {
		return errors.New("push dispatcher not running")
	}
	if a.cluster != nil {
		return a.cluster.ready()
	}
	if a.probe == nil {
		return errors.New("database not open")
	}
	return a.probe.Check()
}

// start binds the listeners and begins serving.
func (a *app) start() error {
	if err := a.web.Listen(); err != nil {
		return err
	}
	if err := a.push.Start(); err != nil {
		return err
	}
	a.errc = a.web.Serve()
	return nil
}

// close shuts everything down in reverse build order: stop accepting
// (listeners), then finish in-flight work within ctx, then close the DB.
func (a *app) close(ctx context.Context) {
	if a.web != nil {
		a.web.Drain()
	}
	if a.bitrix != nil {
		// Bitrix clients reconnect after pull/server_restart with a delay.
		a.bitrix.AnnounceRestart(ctx)
	}
	if a.hub != nil {
		// Live clients reconnect (to this process after a restart, or to
		// another node); 1012 tells them it is a restart, not an error.
		a.hub.CloseAll(1012, restartCloseReason)
		a.hub.Close()
	}
	if a.live != nil {
		a.live.Close()
	}
	if a.web != nil {
		if err := a.web.Shutdown(ctx); err != nil {
			a.log.Warn("listeners did not stop cleanly", "err", err)
		}
	}
	if a.push != nil {
		// In-flight sends finish within ctx; what does not stays leased and
		// is due again after the restart (at-least-once).
		if err := a.push.Stop(ctx); err != nil {
			a.log.Warn("dispatcher did not drain", "err", err)
		}
	}
	if a.remover != nil {
		if err := a.remover.Close(ctx); err != nil {
			a.log.Warn("relay token-remove calls abandoned", "err", err)
		}
	}
	for _, p := range a.provs {
		p.Close()
	}
	if a.probe != nil {
		a.probe.Close() // waits for a probe write in flight, before the DB closes
	}
	if a.queue != nil {
		if err := a.queue.Close(); err != nil {
			a.log.Warn("closing queue", "err", err)
		}
	}
	if a.devices != nil {
		if err := a.devices.Close(); err != nil {
			a.log.Warn("closing device registry", "err", err)
		}
	}
	if a.db != nil {
		if err := a.db.Close(); err != nil {
			a.log.Warn("closing database", "err", err)
		}
		a.db = nil
	}
	a.cluster.close()
	a.cluster = nil
}

// clientURL is the client listener's URL as clients see it: public_url,
// or derived from the listen address.
func clientURL(c ClientConfig) string {
	if c.PublicURL != "" {
		return c.PublicURL
	}
	host, port, err := net.SplitHostPort(c.Addr)
	if err != nil {
		return ""
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	scheme := "http"
	if c.TLSCert != "" {
		scheme = "https"
	}
	return scheme + "://" + net.JoinHostPort(host, port)
}
