package apns

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sideshow/apns2"
	"github.com/sideshow/apns2/token"
	"golang.org/x/net/http2"

	"github.com/pushpull/pushpull/providers"
)

// Provider sends to APNs for the configured apps. It implements
// providers.Provider.
type Provider struct {
	opts   Options
	log    *slog.Logger
	apps   map[string]*app
	pool   *pool // runs the send loops of Send
	closed atomic.Bool
	once   sync.Once
}

var _ providers.Provider = (*Provider)(nil)

// app is one configured app with its two long-lived clients.
type app struct {
	cfg       App
	prod      *apns2.Client
	sandbox   *apns2.Client
	transport *http2.Transport
	// tok is the shared provider token of both clients; nil with
	// certificate auth.
	tok *token.Token
}

// New validates o, loads every key and certificate now (so a bad file
// fails at start, not at the first push) and builds the clients. It does
// not connect: connections open on first use and are then reused.
func New(o Options) (*Provider, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	o.ProductionURL = strings.TrimRight(o.ProductionURL, "/")
	o.SandboxURL = strings.TrimRight(o.SandboxURL, "/")
	p := &Provider{opts: o, log: o.Logger, apps: make(map[string]*app, len(o.Apps)), pool: newPool(o.Concurrency)}
	for i, cfg := range o.Apps {
		if cfg.VoIPTopic == "" {
			cfg.VoIPTopic = cfg.Topic + ".voip"
		}
		a, err := p.newApp(i, cfg)
		if err != nil {
			return nil, err
		}
		p.apps[cfg.ID] = a
	}
	return p, nil
}

func (p *Provider) newApp(i int, cfg App) (*app, error) {
	tlsConf := &tls.Config{RootCAs: p.opts.RootCAs, MinVersion: tls.VersionTLS12}
	a := &app{cfg: cfg}
	if cfg.CertFile != "" {
		cert, err := loadCertificate(cfg.CertFile, cfg.CertPassword)
		if err != nil {
			return nil, fmt.Errorf("apns: apps[%d].cert_file: %w", i, err)
		}
		if cert.Leaf != nil && p.opts.Now().Add(30*24*time.Hour).After(cert.Leaf.NotAfter) {
			p.log.Warn("apns: certificate expires soon", "app", cfg.ID, "not_after", cert.Leaf.NotAfter)
		}
		tlsConf.Certificates = []tls.Certificate{cert}
	} else {
		key, err := loadKey(cfg)
		if err != nil {
			return nil, fmt.Errorf("apns: apps[%d].%w", i, err)
		}
		a.tok = &token.Token{AuthKey: key, KeyID: cfg.KeyID, TeamID: cfg.TeamID}
		if _, err := a.tok.Generate(); err != nil {
			return nil, fmt.Errorf("apns: apps[%d]: sign provider token: %w", i, err)
		}
	}
	a.transport = &http2.Transport{
		TLSClientConfig: tlsConf,
		// Detect dead connections (APNs silently drops idle ones).
		ReadIdleTimeout: 15 * time.Second,
		PingTimeout:     15 * time.Second,
	}
	hc := &http.Client{Transport: metaTransport{next: a.transport}}
	// Both environments share the transport (it pools per host) and the
	// provider token (Apple accepts one JWT for both).
	a.prod = &apns2.Client{Host: p.opts.ProductionURL, Token: a.tok, HTTPClient: hc}
	a.sandbox = &apns2.Client{Host: p.opts.SandboxURL, Token: a.tok, HTTPClient: hc}
	return a, nil
}

func loadKey(cfg App) (*ecdsa.PrivateKey, error) {
	var (
		key   *ecdsa.PrivateKey
		err   error
		field = "key"
	)
	if cfg.KeyFile != "" {
		field = "key_file"
		key, err = token.AuthKeyFromFile(cfg.KeyFile)
	} else {
		key, err = token.AuthKeyFromBytes(cfg.Key)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: want a .p8 (PKCS#8 PEM EC P-256) key: %w", field, err)
	}
	if key.Curve != elliptic.P256() {
		return nil, fmt.Errorf("%s: key is on %s, APNs needs P-256", field, key.Curve.Params().Name)
	}
	return key, nil
}

// Platform returns providers.PlatformAPNs.
func (p *Provider) Platform() string { return providers.PlatformAPNs }

// HasApp reports whether appID is configured.
func (p *Provider) HasApp(appID string) bool {
	_, ok := p.apps[appID]
	return ok
}

// Close makes later Sends answer Retry with ErrClosed, waits for the
// pushes in flight (each bounded by Options.Timeout), ends the parked send
// goroutines and closes idle connections. It is idempotent.
func (p *Provider) Close() error {
	p.once.Do(func() {
		p.closed.Store(true)
		p.pool.close()
		for _, a := range p.apps {
			a.transport.CloseIdleConnections()
		}
	})
	return nil
}

// renderOnce renders one distinct notification of a batch, lazily, in the
// first worker that needs it.
type renderOnce struct {
	once sync.Once
	n    *providers.Notification
	r    *rendered
	err  error
}

func (ro *renderOnce) get() (*rendered, error) {
	ro.once.Do(func() { ro.r, ro.err = render(ro.n) })
	return ro.r, ro.err
}

// Send pushes batch with up to Options.Concurrency pushes in flight and
// returns one Result per message, in input order.
func (p *Provider) Send(ctx context.Context, batch []providers.Message) []providers.Result {
	results := make([]providers.Result, len(batch))
	if len(batch) == 0 {
		return results
	}
	// Messages of a fan-out share one *Notification: render it once.
	renders := make([]*renderOnce, len(batch))
	byPtr := make(map[*providers.Notification]*renderOnce)
	for i := range batch {
		n := batch[i].Notification
		ro, ok := byPtr[n]
		if !ok {
			ro = &renderOnce{n: n}
			byPtr[n] = ro
		}
		renders[i] = ro
	}
	workers := min(len(batch), p.opts.Concurrency)
	if workers == 1 {
		for i := range batch {
			results[i] = p.sendOne(ctx, &batch[i].Target, renders[i])
		}
	} else {
		var next atomic.Int64
		loop := func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= len(batch) {
					return
				}
				results[i] = p.sendOne(ctx, &batch[i].Target, renders[i])
			}
		}
		var wg sync.WaitGroup
		wg.Add(workers - 1)
		for range workers - 1 {
			p.pool.run(func() {
				defer wg.Done()
				loop()
			})
		}
		loop() // the caller is the last of the loops
		wg.Wait()
	}
	p.logFailures(batch, results)
	return results
}

func (p *Provider) sendOne(ctx context.Context, t *providers.Target, ro *renderOnce) providers.Result {
	if p.closed.Load() {
		return providers.Result{Class: providers.Retry, Reason: "closed", Err: ErrClosed}
	}
	if err := ctx.Err(); err != nil {
		return providers.Result{Class: providers.Retry, Reason: "canceled", Err: fmt.Errorf("apns: not sent: %w", err)}
	}
	a, ok := p.apps[t.AppID]
	if !ok {
		return providers.Result{
			Class:  providers.Rejected,
			Reason: "no APNs app configured for " + t.AppID,
			Err:    fmt.Errorf("%w: %q", ErrUnknownApp, t.AppID),
		}
	}
	r, err := ro.get()
	if err == nil {
		err = r.checkSize()
	}
	if err != nil {
		reason := "InvalidNotification"
		if errors.Is(err, ErrPayloadTooLarge) {
			reason = apns2.ReasonPayloadTooLarge
		}
		return providers.Result{Class: providers.Rejected, Reason: reason, Err: err}
	}
	if t.Token == "" || !isHex(t.Token) {
		return providers.Result{
			Class:  providers.TokenInvalid,
			Reason: apns2.ReasonBadDeviceToken,
			Err:    fmt.Errorf("%w: %q", ErrBadDeviceToken, redact(t.Token)),
		}
	}
	client := a.prod
	if t.Sandbox {
		client = a.sandbox
	}
	n := &apns2.Notification{
		DeviceToken: t.Token,
		Topic:       r.topic,
		ApnsID:      r.apnsID,
		CollapseID:  r.collapseID,
		Expiration:  r.expiration,
		Priority:    r.priority,
		PushType:    apns2.EPushType(r.pushType),
		Payload:     r.payload,
	}
	if n.Topic == "" {
		n.Topic = topicFor(&a.cfg, r.pushType)
	}
	var used string
	if a.tok != nil {
		used = a.tok.GenerateIfExpired()
	}
	meta := &respMeta{}
	pctx, cancel := context.WithTimeout(context.WithValue(ctx, metaKey{}, meta), p.opts.Timeout)
	defer cancel()
	res, err := client.PushWithContext(pctx, n)
	if err != nil {
		return classifyError(err, meta, ctx, p.opts.Now())
	}
	out := classifyAnswer(res, meta, p.opts.Now())
	if res.Reason == apns2.ReasonExpiredProviderToken && a.tok != nil {
		p.renewToken(a, used)
	}
	return out
}

// renewToken signs a new provider JWT unless another push already replaced
// the stale one: Apple answers TooManyProviderTokenUpdates to renewals more
// often than every 20 minutes, so a burst of 403s must renew once.
func (p *Provider) renewToken(a *app, stale string) {
	a.tok.Lock()
	defer a.tok.Unlock()
	if a.tok.Bearer != stale {
		return
	}
	if _, err := a.tok.Generate(); err != nil {
		p.log.Error("apns: renew provider token", "app", a.cfg.ID, "key_id", a.cfg.KeyID, "err", err)
		return
	}
	p.log.Info("apns: provider token renewed after ExpiredProviderToken", "app", a.cfg.ID, "key_id", a.cfg.KeyID)
}

// logFailures writes one line per (app, class, reason) of a batch rather
// than one per push: a misconfigured topic fails every push the same way.
func (p *Provider) logFailures(batch []providers.Message, results []providers.Result) {
	type key struct {
		app    string
		class  providers.Class
		reason string
	}
	var groups map[key][]int
	for i := range results {
		if results[i].Class == providers.Delivered {
			continue
		}
		if groups == nil {
			groups = make(map[key][]int)
		}
		k := key{batch[i].Target.AppID, results[i].Class, results[i].Reason}
		groups[k] = append(groups[k], i)
	}
	for k, idx := range groups {
		first := idx[0]
		level := slog.LevelDebug
		if k.class == providers.Rejected {
			// Our request or configuration is wrong: someone must act.
			level = slog.LevelWarn
		}
		p.log.Log(context.Background(), level, "apns: push not delivered",
			"app", k.app, "class", k.class.String(), "reason", k.reason, "count", len(idx),
			"status", results[first].Status, "token", redact(batch[first].Target.Token),
			"err", results[first].Err)
	}
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}
