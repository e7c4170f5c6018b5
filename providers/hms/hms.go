package hms

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pushpull/pushpull/providers"
)

// Provider sends pushes through Huawei Push Kit. It is safe for concurrent
// use.
type Provider struct {
	opts      Options
	hc        *http.Client
	transport *http.Transport // owned; nil when Options.HTTPClient is used
	apps      map[string]*appState
	closed    atomic.Bool
}

type appState struct {
	App
	sendURL string
	auth    *tokenSource
}

var _ providers.Provider = (*Provider)(nil)

// New validates o, reads secret files and prepares one token source per
// app. It makes no network request: tokens are fetched on first send.
func New(o Options) (*Provider, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	p := &Provider{opts: o, hc: o.HTTPClient, apps: make(map[string]*appState, len(o.Apps))}
	if p.hc == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.MaxIdleConnsPerHost = o.Concurrency
		t.ForceAttemptHTTP2 = true
		p.transport = t
		p.hc = &http.Client{Transport: t}
	}
	for i, a := range o.Apps {
		secret := a.ClientSecret
		if a.ClientSecretFile != "" {
			b, err := os.ReadFile(a.ClientSecretFile)
			if err != nil {
				return nil, fmt.Errorf("hms: Apps[%d] (%s): read ClientSecretFile: %w", i, a.ID, err)
			}
			secret = strings.TrimSpace(string(b))
			if secret == "" {
				return nil, fmt.Errorf("%w: Apps[%d].ClientSecretFile: %s is empty", ErrInvalidOptions, i, a.ClientSecretFile)
			}
		}
		if a.HMSAppID == "" {
			a.HMSAppID = a.ClientID
		}
		p.apps[a.ID] = &appState{
			App:     a,
			sendURL: strings.TrimRight(o.Endpoint, "/") + "/v1/" + url.PathEscape(a.HMSAppID) + "/messages:send",
			auth:    newTokenSource(a.ClientID, secret, o.TokenURL, p.hc, o.Timeout, o.Now),
		}
	}
	return p, nil
}

// Platform returns Platform ("hms").
func (p *Provider) Platform() string { return Platform }

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

// chunk is one request: an app, a message template and the batch indexes
// of the messages whose tokens it carries (no token twice, since HMS would
// deliver a repeated token twice).
type chunk struct {
	app    *appState
	tmpl   *wireMessage
	idx    []int
	tokens map[string]bool
}

// Send delivers batch with up to Options.Concurrency requests in flight and
// returns one Result per message in input order.
func (p *Provider) Send(ctx context.Context, batch []providers.Message) []providers.Result {
	results := make([]providers.Result, len(batch))
	if p.closed.Load() {
		for i := range results {
			results[i] = providers.Result{Class: providers.Retry, Reason: ReasonClosed, Err: ErrClosed}
		}
		return results
	}
	chunks := p.plan(batch, results)
	var next atomic.Int64
	run := func() {
		for {
			k := int(next.Add(1) - 1)
			if k >= len(chunks) {
				return
			}
			c := chunks[k]
			for j, r := range p.sendChunk(ctx, c, batch) {
				results[c.idx[j]] = r
			}
		}
	}
	if len(chunks) == 1 {
		run()
		return results
	}
	var wg sync.WaitGroup
	for range min(p.opts.Concurrency, len(chunks)) {
		wg.Go(run)
	}
	wg.Wait()
	return results
}

// plan resolves apps, builds one template per (app, notification) and
// packs the messages into chunks. Messages that cannot be sent get their
// result at once.
func (p *Provider) plan(batch []providers.Message, results []providers.Result) []*chunk {
	type key struct {
		app *appState
		n   *providers.Notification
	}
	type built struct {
		m   *wireMessage
		err error
	}
	templates := make(map[key]built, 1)
	open := make(map[key][]*chunk, 1)
	var chunks []*chunk
	now := p.opts.Now()
	for i, msg := range batch {
		app, ok := p.apps[msg.Target.AppID]
		if !ok {
			results[i] = providers.Result{Class: providers.Rejected, Reason: ReasonNoApp,
				Err: fmt.Errorf("%w: no HMS app configured for %s", ErrUnknownApp, msg.Target.AppID)}
			continue
		}
		if msg.Target.Token == "" {
			results[i] = providers.Result{Class: providers.TokenInvalid, Reason: ReasonInvalid,
				Err: fmt.Errorf("%w: empty token", ErrTokenInvalid)}
			continue
		}
		k := key{app, msg.Notification}
		b, ok := templates[k]
		if !ok {
			b.m, b.err = buildMessage(msg.Notification, app.App, now)
			templates[k] = b
		}
		if b.err != nil {
			reason := ReasonInvalid
			if errors.Is(b.err, ErrPayloadTooLarge) {
				reason = ReasonTooLarge
			}
			results[i] = providers.Result{Class: providers.Rejected, Reason: reason, Err: b.err}
			p.opts.Logger.Warn("hms: message rejected before sending", "app", app.ID,
				"target", msg.Target.ID, "token", redact(msg.Target.Token), "err", b.err)
			continue
		}
		var dst *chunk
		for _, c := range open[k] {
			if len(c.idx) < p.opts.MaxTokensPerRequest && !c.tokens[msg.Target.Token] {
				dst = c
				break
			}
		}
		if dst == nil {
			dst = &chunk{app: app, tmpl: b.m, tokens: make(map[string]bool)}
			open[k] = append(open[k], dst)
			chunks = append(chunks, dst)
		}
		dst.idx = append(dst.idx, i)
		dst.tokens[msg.Target.Token] = true
	}
	return chunks
}

// sendChunk sends one request, fetching a fresh access token and trying
// once more when HMS says the cached one is expired or unknown.
func (p *Provider) sendChunk(ctx context.Context, c *chunk, batch []providers.Message) []providers.Result {
	tokens := make([]string, len(c.idx))
	for j, i := range c.idx {
		tokens[j] = batch[i].Target.Token
	}
	same := func(r providers.Result) []providers.Result {
		out := make([]providers.Result, len(tokens))
		for j := range out {
			out[j] = r
		}
		return out
	}
	m := *c.tmpl
	m.Token = tokens
	body, err := json.Marshal(sendBody{Message: &m})
	if err != nil {
		return same(providers.Result{Class: providers.Rejected, Reason: ReasonInvalid,
			Err: fmt.Errorf("%w: encode: %w", ErrInvalidMessage, err)})
	}
	var out []providers.Result
	for attempt := 0; ; attempt++ {
		if err := ctx.Err(); err != nil {
			return same(providers.Result{Class: providers.Retry, Reason: ReasonCancelled, Err: err})
		}
		access, err := c.app.auth.token(ctx)
		if err != nil {
			r := authResult(err, ctx)
			if r.Class == providers.Rejected {
				p.opts.Logger.Error("hms: access token refused", "app", c.app.ID,
					"client", c.app.ClientID, "err", err)
			}
			return same(r)
		}
		status, hdr, ans, parsed, r, sent := p.post(ctx, c.app.sendURL, access, body)
		if !sent {
			return same(r)
		}
		if parsed && authExpired(status, ans) && attempt == 0 {
			c.app.auth.invalidate(access)
			continue
		}
		out = classifyAnswer(status, hdr, ans, parsed, tokens, p.opts.Now())
		break
	}
	for j, r := range out {
		t := batch[c.idx[j]].Target
		switch r.Class {
		case providers.TokenInvalid:
			p.opts.Logger.Info("hms: token invalid", "app", c.app.ID, "target", t.ID,
				"token", redact(t.Token), "reason", r.Reason)
		case providers.Rejected:
			p.opts.Logger.Warn("hms: push rejected", "app", c.app.ID, "target", t.ID,
				"token", redact(t.Token), "reason", r.Reason, "status", r.Status, "err", r.Err)
		}
	}
	return out
}

// post sends one request. sent is false when no answer came; r is then the
// Result for every token.
func (p *Provider) post(ctx context.Context, u, access string, body []byte) (status int, hdr http.Header, a answer, parsed bool, r providers.Result, sent bool) {
	rctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return 0, nil, a, false, providers.Result{Class: providers.Rejected, Reason: ReasonInvalid,
			Err: fmt.Errorf("hms: build request: %w", err)}, false
	}
	req.Header.Set("Content-Type", "application/json;charset=UTF-8")
	req.Header.Set("Authorization", "Bearer "+access)
	resp, err := p.hc.Do(req)
	if err != nil {
		return 0, nil, a, false, transportResult(fmt.Errorf("hms send: %w", err), ctx, rctx), false
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return 0, nil, a, false, transportResult(fmt.Errorf("hms send: read answer: %w", err), ctx, rctx), false
	}
	parsed = json.Unmarshal(raw, &a) == nil && a.Code != ""
	return resp.StatusCode, resp.Header, a, parsed, providers.Result{}, true
}

// redact keeps the first 8 characters of a secret, enough to correlate.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
