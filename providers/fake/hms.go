package fake

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HMSOptions configures a fake HMS. The zero value is a plain-HTTP server
// that requires access tokens it issued itself and records every send.
type HMSOptions struct {
	// TLS serves HTTPS with a self-signed certificate; use Client().
	TLS bool
	// NoAuth accepts sends without a valid Authorization header.
	NoAuth bool
	// CountOnly keeps counters but records no requests: for benchmarks.
	CountOnly bool
	// TokenTTL is the lifetime of issued access tokens. Default 1 h, as
	// Huawei's OAuth server answers (expires_in 3600).
	TokenTTL time.Duration
	// Now is the clock for token issue and expiry. Default time.Now.
	Now func() time.Time
	// Logger receives one line per refused request. Default: discard.
	Logger *slog.Logger
}

// HMSBehavior is how the fake answers a send that carries a token. The
// zero value is success.
//
// Code HMSAllTokensInvalid marks the token itself as illegal: a request
// whose tokens are all illegal is answered 400 80300007, one where only
// some are is answered 200 80100000 with the illegal ones listed, as HMS
// does. Any other non-success Code or Status fails the whole request.
type HMSBehavior struct {
	// Status is the HTTP status; 0 means the one HMS uses for Code.
	Status int
	// Code is the HMS result code; "" means success (or 81000001 with a
	// 5xx Status).
	Code string
	// Message is the msg text; a realistic default is used if empty.
	Message string
	// Times limits the behaviour to the next Times requests carrying the
	// token; 0 means forever.
	Times int
	// Delay holds the answer back (or until the client gives up).
	Delay time.Duration
	// RetryAfter adds a Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
}

// HMSRequest is one send the fake received.
type HMSRequest struct {
	AppID        string
	Tokens       []string
	ValidateOnly bool
	// Message is the decoded "message" object as the client sent it.
	Message map[string]any
	// Raw is the "message" object's JSON text.
	Raw json.RawMessage
	// Status and Code are what the fake answered.
	Status int
	Code   string
	// Auth is the access token the request carried.
	Auth string
}

// HMS is a protocol-true fake of Huawei Push Kit's v1 send API and of
// Huawei's OAuth 2.0 token endpoint (client-credentials grant). It is safe
// for concurrent use.
type HMS struct {
	opts HMSOptions
	srv  *httptest.Server

	mu       sync.Mutex
	scripts  map[string]*HMSBehavior
	def      HMSBehavior
	received []HMSRequest
	clients  map[string]hmsClient      // client id -> secret and app id
	tokens   map[string]hmsIssuedToken // access token -> grant
	changed  chan struct{}

	waiters   atomic.Int32
	requests  atomic.Int64
	delivered atomic.Int64 // tokens accepted
	grants    atomic.Int64
	nextID    atomic.Int64
	closeOnce sync.Once
}

type hmsClient struct {
	secret string
	appID  string
}

type hmsIssuedToken struct {
	appID   string
	expires time.Time
}

// NewHMS starts a fake HMS on a random loopback port.
func NewHMS(opts HMSOptions) (*HMS, error) {
	if opts.TokenTTL < 0 {
		return nil, errors.New("fake: HMSOptions.TokenTTL must not be negative")
	}
	if opts.TokenTTL == 0 {
		opts.TokenTTL = time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	f := &HMS{
		opts:    opts,
		scripts: make(map[string]*HMSBehavior),
		clients: make(map[string]hmsClient),
		tokens:  make(map[string]hmsIssuedToken),
		changed: make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /oauth2/v3/token", f.handleToken)
	mux.HandleFunc("POST /v1/{app}/messages:send", f.handleSend)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.Config.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)
	if opts.TLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	return f, nil
}

// URL is the base URL of the push API (the provider's Endpoint).
func (f *HMS) URL() string { return f.srv.URL }

// TokenURL is the OAuth token endpoint (the provider's TokenURL).
func (f *HMS) TokenURL() string { return f.srv.URL + "/oauth2/v3/token" }

// Client returns an HTTP client that trusts the fake's certificate.
func (f *HMS) Client() *http.Client { return f.srv.Client() }

// Close stops the server and waits for in-flight requests. Idempotent.
func (f *HMS) Close() {
	f.closeOnce.Do(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
}

// AddClient registers OAuth client credentials allowed to push for appID
// (the id in the send URL). Real HMS often uses the same value for both.
func (f *HMS) AddClient(clientID, secret, appID string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.clients[clientID] = hmsClient{secret: secret, appID: appID}
}

// RevokeTokens invalidates every access token issued so far, so the next
// send with one is answered 401 80200003, like an expired token.
func (f *HMS) RevokeTokens() {
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.tokens)
}

// TokensIssued is the number of access tokens granted since start.
func (f *HMS) TokensIssued() int64 { return f.grants.Load() }

// Script sets how sends carrying token are answered.
func (f *HMS) Script(token string, b HMSBehavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bb := b
	f.scripts[token] = &bb
}

// SetDefault sets how sends to unscripted tokens are answered.
func (f *HMS) SetDefault(b HMSBehavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.def = b
}

// Received returns a copy of the sends recorded so far, in arrival order.
func (f *HMS) Received() []HMSRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]HMSRequest(nil), f.received...)
}

// Requests is the number of send requests answered (any status).
func (f *HMS) Requests() int64 { return f.requests.Load() }

// Delivered is the number of tokens accepted (one request may carry many).
func (f *HMS) Delivered() int64 { return f.delivered.Load() }

// WaitDelivered blocks until at least n tokens were accepted or ctx ends.
func (f *HMS) WaitDelivered(ctx context.Context, n int64) error {
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		if f.delivered.Load() >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fake: %d of %d HMS tokens delivered: %w", f.delivered.Load(), n, ctx.Err())
		}
	}
}

func (f *HMS) record(r *HMSRequest, accepted int) {
	f.requests.Add(1)
	f.delivered.Add(int64(accepted))
	if f.opts.CountOnly && f.waiters.Load() == 0 {
		return
	}
	f.mu.Lock()
	if !f.opts.CountOnly {
		f.received = append(f.received, *r)
	}
	if f.waiters.Load() > 0 {
		close(f.changed)
		f.changed = make(chan struct{})
	}
	f.mu.Unlock()
}

// behaviours consumes one use of each token's script.
func (f *HMS) behaviours(tokens []string) []HMSBehavior {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]HMSBehavior, len(tokens))
	for i, t := range tokens {
		s, ok := f.scripts[t]
		if !ok {
			out[i] = f.def
			continue
		}
		out[i] = *s
		if s.Times > 0 {
			s.Times--
			if s.Times == 0 {
				delete(f.scripts, t)
			}
		}
	}
	return out
}

// handleToken implements Huawei's client-credentials grant:
// grant_type=client_credentials&client_id=…&client_secret=….
func (f *HMS) handleToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		hmsOAuthError(w, http.StatusBadRequest, 1101, 20001, "invalid request")
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		hmsOAuthError(w, http.StatusBadRequest, 1101, 20003, "grant_type is unsupported")
		return
	}
	id, secret := r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	f.mu.Lock()
	c, ok := f.clients[id]
	f.mu.Unlock()
	if !ok || id == "" {
		hmsOAuthError(w, http.StatusBadRequest, 1101, 20156, "client id invalid")
		return
	}
	if secret != c.secret {
		f.opts.Logger.Warn("fake hms: token grant refused", "client", id)
		hmsOAuthError(w, http.StatusBadRequest, 1101, 20158, "client secret invalid")
		return
	}
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	access := "CgB6e3x9" + hex.EncodeToString(b)
	f.mu.Lock()
	f.tokens[access] = hmsIssuedToken{appID: c.appID, expires: f.opts.Now().Add(f.opts.TokenTTL)}
	f.mu.Unlock()
	f.grants.Add(1)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"access_token": access,
		"expires_in":   int64(f.opts.TokenTTL / time.Second),
		"token_type":   "Bearer",
	})
}

func hmsOAuthError(w http.ResponseWriter, status, code, sub int, desc string) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": code, "sub_error": sub, "error_description": desc})
}

type hmsSendBody struct {
	ValidateOnly bool            `json:"validate_only"`
	Message      json.RawMessage `json:"message"`
}

func (f *HMS) handleSend(w http.ResponseWriter, r *http.Request) {
	req := HMSRequest{AppID: r.PathValue("app")}
	if code, ok := f.authorize(r, &req); !ok {
		req.Status, req.Code = http.StatusUnauthorized, code
		f.opts.Logger.Warn("fake hms: refused send", "app", req.AppID, "code", code)
		hmsWrite(w, f.nextID.Add(1), req.Status, code, hmsDefaultMsg(code), 0)
		f.record(&req, 0)
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return
	}
	var body hmsSendBody
	var m hmsWireMessage
	err = json.Unmarshal(raw, &body)
	if err == nil && (len(body.Message) == 0 || string(body.Message) == "null") {
		err = errors.New("message is required")
	}
	if err == nil {
		err = json.Unmarshal(body.Message, &m)
	}
	req.Raw, req.ValidateOnly, req.Tokens = body.Message, body.ValidateOnly, m.Token
	if !f.opts.CountOnly && err == nil {
		_ = json.Unmarshal(body.Message, &req.Message)
	}
	if code, msg := hmsCheck(&m, body.Message, err); code != "" {
		req.Status, req.Code = http.StatusBadRequest, code
		hmsWrite(w, f.nextID.Add(1), req.Status, code, msg, 0)
		f.record(&req, 0)
		return
	}
	f.answer(w, r, &req)
}

// answer applies the scripts of the request's tokens.
func (f *HMS) answer(w http.ResponseWriter, r *http.Request, req *HMSRequest) {
	bs := f.behaviours(req.Tokens)
	var delay time.Duration
	for _, b := range bs {
		delay = max(delay, b.Delay)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	var illegal []string
	for i, b := range bs {
		if b.Code == HMSAllTokensInvalid && b.Status == 0 {
			illegal = append(illegal, req.Tokens[i])
			continue
		}
		if b.Code == "" && (b.Status == 0 || b.Status == http.StatusOK) {
			continue
		}
		// A request-level failure: the first one decides the answer.
		req.Status, req.Code = b.Status, b.Code
		if req.Code == "" {
			req.Code = HMSInternalError
		}
		if req.Status == 0 {
			req.Status = hmsStatusFor(req.Code)
		}
		msg := b.Message
		if msg == "" {
			msg = hmsDefaultMsg(req.Code)
		}
		f.record(req, 0)
		hmsWrite(w, f.nextID.Add(1), req.Status, req.Code, msg, b.RetryAfter)
		return
	}
	switch {
	case len(illegal) == len(req.Tokens):
		req.Status, req.Code = http.StatusBadRequest, HMSAllTokensInvalid
		f.record(req, 0)
		hmsWrite(w, f.nextID.Add(1), req.Status, req.Code, hmsDefaultMsg(req.Code), 0)
	case len(illegal) > 0:
		req.Status, req.Code = http.StatusOK, HMSPartialSuccess
		msg, _ := json.Marshal(map[string]any{
			"success": len(req.Tokens) - len(illegal), "failure": len(illegal), "illegal_tokens": illegal,
		})
		f.record(req, len(req.Tokens)-len(illegal))
		hmsWrite(w, f.nextID.Add(1), req.Status, req.Code, string(msg), 0)
	default:
		req.Status, req.Code = http.StatusOK, HMSSuccess
		accepted := len(req.Tokens)
		if req.ValidateOnly {
			accepted = 0
		}
		f.record(req, accepted)
		hmsWrite(w, f.nextID.Add(1), req.Status, req.Code, "Success", 0)
	}
}

// authorize checks the bearer token; it reports the HMS code to refuse with.
func (f *HMS) authorize(r *http.Request, req *HMSRequest) (string, bool) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	req.Auth = tok
	if f.opts.NoAuth {
		return "", true
	}
	if !ok || tok == "" {
		return HMSOAuthError, false
	}
	f.mu.Lock()
	grant, found := f.tokens[tok]
	f.mu.Unlock()
	switch {
	case !found:
		// Unknown tokens include revoked ones: HMS says "expired" for an
		// access token it once issued, "auth error" for a foreign one.
		if strings.HasPrefix(tok, "CgB6e3x9") {
			return HMSTokenExpired, false
		}
		return HMSOAuthError, false
	case !f.opts.Now().Before(grant.expires):
		return HMSTokenExpired, false
	case grant.appID != req.AppID:
		return HMSOAuthError, false
	}
	return "", true
}
