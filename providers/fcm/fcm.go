package fcm

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	firebase "firebase.google.com/go/v4"
	"firebase.google.com/go/v4/messaging"
	"golang.org/x/oauth2"
	"google.golang.org/api/option"
	htransport "google.golang.org/api/transport/http"

	"github.com/pushpull/pushpull/providers"
)

// oauthScopes are the scopes requested for the service account's access
// token; firebase.messaging is the one FCM checks.
func oauthScopes() []string {
	return []string{
		"https://www.googleapis.com/auth/cloud-platform",
		"https://www.googleapis.com/auth/firebase.messaging",
	}
}

// Provider sends pushes through FCM. It is safe for concurrent use.
type Provider struct {
	opts      Options
	now       func() time.Time
	apps      map[string]*appClient
	transport *http.Transport // owned; nil when Options.HTTPClient is used
	closed    atomic.Bool
}

type appClient struct {
	id      string
	project string
	client  *messaging.Client
}

var _ providers.Provider = (*Provider)(nil)

// New validates o and builds one messaging client per app. ctx is used for
// setup and for the values seen by OAuth token refreshes; its cancellation
// is ignored after New returns.
func New(ctx context.Context, o Options) (*Provider, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	p := &Provider{opts: o, now: o.Now, apps: make(map[string]*appClient, len(o.Apps))}

	var base http.RoundTripper
	if o.HTTPClient != nil {
		base = o.HTTPClient.Transport
		if base == nil {
			base = http.DefaultTransport
		}
		// Token refreshes go through the caller's client too (proxy, TLS
		// trust), not http.DefaultClient.
		ctx = context.WithValue(ctx, oauth2.HTTPClient, o.HTTPClient)
	} else {
		// One pool for all apps, sized so that every worker keeps its
		// connection between sends (the library default keeps 100).
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency
		t.MaxIdleConns = o.Concurrency * len(o.Apps)
		t.ForceAttemptHTTP2 = true
		p.transport, base = t, t
	}
	// Token refreshes happen long after New returns.
	ctx = context.WithoutCancel(ctx)

	for i, a := range o.Apps {
		ac, err := newAppClient(ctx, o, a, base)
		if err != nil {
			p.Close()
			return nil, fmt.Errorf("fcm: Apps[%d] (%s): %w", i, a.ID, err)
		}
		p.apps[a.ID] = ac
	}
	return p, nil
}

func newAppClient(ctx context.Context, o Options, a App, base http.RoundTripper) (*appClient, error) {
	project := a.ProjectID
	hc := o.HTTPClient
	if a.hasCredentials() {
		creds := a.CredentialsJSON
		if a.CredentialsFile != "" {
			b, err := os.ReadFile(a.CredentialsFile)
			if err != nil {
				return nil, fmt.Errorf("read credentials: %w", err)
			}
			creds = b
		}
		var sa struct {
			Type      string `json:"type"`
			ProjectID string `json:"project_id"`
		}
		if err := json.Unmarshal(creds, &sa); err != nil {
			return nil, fmt.Errorf("parse credentials: %w", err)
		}
		// Other credential types (external_account, ...) can make the auth
		// library run commands or read files; FCM needs a service account.
		if sa.Type != "service_account" {
			return nil, fmt.Errorf("%w: credentials: type %q, want \"service_account\"", ErrInvalidOptions, sa.Type)
		}
		if project == "" {
			project = sa.ProjectID
		}
		if project == "" {
			return nil, fmt.Errorf("%w: ProjectID: not set and the credentials have no project_id", ErrInvalidOptions)
		}
		rt, err := htransport.NewTransport(ctx, base,
			option.WithCredentialsJSON(creds),
			option.WithScopes(oauthScopes()...),
			option.WithTelemetryDisabled())
		if err != nil {
			return nil, fmt.Errorf("credentials: %w", err)
		}
		if o.HTTPClient != nil {
			c := *o.HTTPClient
			c.Transport = rt
			hc = &c
		} else {
			hc = &http.Client{Transport: rt}
		}
	}
	fopts := []option.ClientOption{option.WithHTTPClient(hc)}
	if o.Endpoint != "" {
		fopts = append(fopts, option.WithEndpoint(o.Endpoint))
	}
	app, err := firebase.NewApp(ctx, &firebase.Config{ProjectID: project}, fopts...)
	if err != nil {
		return nil, fmt.Errorf("firebase app: %w", err)
	}
	mc, err := app.Messaging(ctx)
	if err != nil {
		return nil, fmt.Errorf("messaging client: %w", err)
	}
	return &appClient{id: a.ID, project: project, client: mc}, nil
}

// Platform returns providers.PlatformFCM.
func (p *Provider) Platform() string { return providers.PlatformFCM }

// HasApp reports whether appID is configured.
func (p *Provider) HasApp(appID string) bool {
	_, ok := p.apps[appID]
	return ok
}

// Close releases idle connections of the provider's own transport. Sends
// after Close return Retry results. Idempotent.
func (p *Provider) Close() error {
	if p.closed.Swap(true) {
		return nil
	}
	if p.transport != nil {
		p.transport.CloseIdleConnections()
	}
	return nil
}

// prepared is one message ready to send.
type prepared struct {
	app  *appClient
	tmpl *messaging.Message // shared by messages with the same *Notification
}

// Send delivers batch with up to Options.Concurrency sends in flight and
// returns one Result per message in input order.
//
// Each message is one SDK Send (one HTTP request, as SendEach does inside)
// run by this call's own workers, rather than SendEach chunks: a message
// the SDK refuses fails alone instead of failing its whole chunk, each send
// gets its own timeout, and no 50 goroutines are started per 500 messages.
func (p *Provider) Send(ctx context.Context, batch []providers.Message) []providers.Result {
	results := make([]providers.Result, len(batch))
	if p.closed.Load() {
		for i := range results {
			results[i] = providers.Result{Class: providers.Retry, Reason: ReasonClosed, Err: ErrClosed}
		}
		return results
	}
	preps, work := p.prepare(batch, results)
	run := func(next *atomic.Int64) {
		for {
			k := int(next.Add(1) - 1)
			if k >= len(work) {
				return
			}
			i := work[k]
			results[i] = p.sendOne(ctx, batch[i].Target, preps[i], batch[i].Notification.ExpiresAt)
		}
	}
	var next atomic.Int64
	if len(work) == 1 {
		run(&next) // no goroutine for the common single push
		return results
	}
	var wg sync.WaitGroup
	for range min(p.opts.Concurrency, len(work)) {
		wg.Go(func() { run(&next) })
	}
	wg.Wait()
	return results
}

// prepare resolves apps and builds one message template per distinct
// notification. Messages that cannot be sent get their result at once;
// the indexes of the others are returned as work.
func (p *Provider) prepare(batch []providers.Message, results []providers.Result) ([]prepared, []int) {
	preps := make([]prepared, len(batch))
	work := make([]int, 0, len(batch))
	type built struct {
		m   *messaging.Message
		err error
	}
	cache := make(map[*providers.Notification]built, 1)
	now := p.now()
	for i, msg := range batch {
		app, ok := p.apps[msg.Target.AppID]
		if !ok {
			results[i] = providers.Result{Class: providers.Rejected, Reason: ReasonNoApp,
				Err: fmt.Errorf("%w: no FCM app configured for %s", ErrUnknownApp, msg.Target.AppID)}
			continue
		}
		b, ok := cache[msg.Notification]
		if !ok {
			b.m, b.err = buildMessage(msg.Notification, now)
			cache[msg.Notification] = b
		}
		if b.err != nil {
			results[i] = providers.Result{Class: providers.Rejected, Reason: ReasonInvalid, Err: b.err}
			p.opts.Logger.Warn("fcm: message rejected before sending", "app", app.id,
				"target", msg.Target.ID, "token", redact(msg.Target.Token), "err", b.err)
			continue
		}
		preps[i] = prepared{app: app, tmpl: b.m}
		work = append(work, i)
	}
	return preps, work
}

func (p *Provider) sendOne(ctx context.Context, t providers.Target, pr prepared, expires time.Time) providers.Result {
	if err := ctx.Err(); err != nil {
		return providers.Result{Class: providers.Retry, Reason: ReasonCancelled, Err: err}
	}
	m := *pr.tmpl // shallow copy: the SDK only reads the shared parts
	m.Token = t.Token
	timeout := p.opts.Timeout
	// The SDK retries 500/503 and network errors inside Send (up to four
	// times, honouring Retry-After): without this bound a push could go
	// out after its expiry, carrying a TTL computed before the retries.
	if !expires.IsZero() {
		timeout = max(min(timeout, expires.Sub(p.now())), 0)
	}
	sctx, cancel := context.WithTimeout(ctx, timeout)
	name, err := pr.app.client.Send(sctx, &m)
	r := classify(err, name, ctx, sctx, p.now())
	cancel()
	switch r.Class {
	case providers.TokenInvalid:
		p.opts.Logger.Info("fcm: token invalid", "app", pr.app.id, "target", t.ID,
			"token", redact(t.Token), "reason", r.Reason, "status", r.Status)
	case providers.Rejected:
		p.opts.Logger.Warn("fcm: push rejected", "app", pr.app.id, "target", t.ID,
			"token", redact(t.Token), "reason", r.Reason, "status", r.Status, "err", r.Err)
	}
	return r
}

// redact keeps the first 8 characters of a secret, enough to correlate.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
