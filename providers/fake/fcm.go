package fake

import (
	"context"
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

// FCM error codes the fake can answer with, as they appear in the
// FcmError detail of an FCM v1 error body.
const (
	FCMUnregistered        = "UNREGISTERED"
	FCMInvalidArgument     = "INVALID_ARGUMENT"
	FCMQuotaExceeded       = "QUOTA_EXCEEDED"
	FCMUnavailable         = "UNAVAILABLE"
	FCMInternal            = "INTERNAL"
	FCMSenderIDMismatch    = "SENDER_ID_MISMATCH"
	FCMThirdPartyAuthError = "THIRD_PARTY_AUTH_ERROR"
)

// FCMTokenField is the field name real FCM puts in a google.rpc.BadRequest
// field violation when the registration token itself is malformed. Use it
// as FCMBehavior.Field to script an "invalid token" INVALID_ARGUMENT.
const FCMTokenField = "message.token"

// FCMOptions configures a fake FCM server. The zero value is a plain-HTTP
// server that requires OAuth access tokens it issued itself and records
// every message.
type FCMOptions struct {
	// TLS serves HTTPS with a self-signed certificate; use Client() to get
	// an *http.Client that trusts it.
	TLS bool
	// NoAuth accepts sends without an Authorization header (for clients
	// built with WithoutAuthentication or a bare HTTP client).
	NoAuth bool
	// CountOnly keeps counters but does not record messages (Received
	// stays empty) and decodes only the token: for benchmarks.
	CountOnly bool
	// TokenTTL is the lifetime of issued access tokens. Default 1 h.
	TokenTTL time.Duration
	// Now is the clock used for token issue and expiry. Default time.Now.
	Now func() time.Time
	// Logger receives one line per rejected request. Default: discard.
	Logger *slog.Logger
}

// FCMBehavior is how the fake answers a send. The zero value is success.
type FCMBehavior struct {
	// Status is the HTTP status to answer; 0 means the status that real
	// FCM uses for ErrorCode (200 when ErrorCode is empty).
	Status int
	// ErrorCode is the FcmError code (FCMUnregistered, ...). Empty with a
	// non-2xx Status answers a plain Google API error with no FcmError.
	ErrorCode string
	// Field, for INVALID_ARGUMENT, adds a google.rpc.BadRequest detail with
	// a field violation on this field (FCMTokenField for a bad token).
	Field string
	// Message is the error message; a realistic default is used if empty.
	Message string
	// Times limits a scripted behaviour to the next Times sends of that
	// token, after which the default applies again. 0 means forever.
	Times int
	// Delay holds the answer back (or until the client gives up).
	Delay time.Duration
	// RetryAfter adds a Retry-After header (whole seconds, rounded up).
	RetryAfter time.Duration
}

// FCMRequest is one send the fake received.
type FCMRequest struct {
	Project      string
	Token        string
	ValidateOnly bool
	// Message is the decoded "message" object exactly as the client sent it.
	Message map[string]any
	// Raw is the "message" object's JSON text.
	Raw json.RawMessage
	// Status is what the fake answered.
	Status int
	// Auth is the access token the request carried ("" without one).
	Auth string
	// At is when the fake answered, on its clock.
	At time.Time
}

// FCM is a protocol-true fake of the FCM HTTP v1 API and of Google's OAuth
// token endpoint. It is safe for concurrent use.
type FCM struct {
	opts FCMOptions
	srv  *httptest.Server

	mu       sync.Mutex
	scripts  map[string]*FCMBehavior
	def      FCMBehavior
	received []FCMRequest
	accounts map[string]*fcmServiceAccount // by private_key_id
	tokens   map[string]fcmIssuedToken     // access token -> grant
	changed  chan struct{}                 // closed and replaced when counters move, if waited on

	waiters   atomic.Int32 // WaitDelivered calls in progress
	requests  atomic.Int64
	delivered atomic.Int64
	held      atomic.Int64 // sends waiting out a Delay
	nextID    atomic.Int64
	closeOnce sync.Once

	faults faultState
}

// NewFCM starts a fake FCM on a random loopback port.
func NewFCM(opts FCMOptions) (*FCM, error) {
	if opts.TokenTTL < 0 {
		return nil, errors.New("fake: FCMOptions.TokenTTL must not be negative")
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
	f := &FCM{
		opts:     opts,
		scripts:  make(map[string]*FCMBehavior),
		accounts: make(map[string]*fcmServiceAccount),
		tokens:   make(map[string]fcmIssuedToken),
		changed:  make(chan struct{}),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", f.handleToken)
	mux.HandleFunc("POST /v1/projects/{project}/messages:send", f.handleSend)
	f.srv = httptest.NewUnstartedServer(mux)
	f.srv.Config.ErrorLog = slog.NewLogLogger(opts.Logger.Handler(), slog.LevelDebug)
	if opts.TLS {
		f.srv.StartTLS()
	} else {
		f.srv.Start()
	}
	return f, nil
}

// URL is the fake's base URL; the firebase SDK endpoint is URL()+"/v1".
func (f *FCM) URL() string { return f.srv.URL }

// Client returns an HTTP client that trusts the fake's TLS certificate
// (a plain client when TLS is off).
func (f *FCM) Client() *http.Client { return f.srv.Client() }

// Close stops the server and waits for in-flight requests. Idempotent.
func (f *FCM) Close() {
	f.closeOnce.Do(func() {
		f.srv.CloseClientConnections()
		f.srv.Close()
	})
}

// Script sets how sends to token are answered, replacing an earlier script.
func (f *FCM) Script(token string, b FCMBehavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	bb := b
	f.scripts[token] = &bb
}

// SetDefault sets how sends to unscripted tokens are answered.
func (f *FCM) SetDefault(b FCMBehavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.def = b
}

// Received returns a copy of the sends recorded so far, in arrival order.
func (f *FCM) Received() []FCMRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]FCMRequest(nil), f.received...)
}

// Requests is the number of send requests answered (any status).
func (f *FCM) Requests() int64 { return f.requests.Load() }

// Held is how many sends are being held back by a Delay right now.
func (f *FCM) Held() int64 { return f.held.Load() }

// Delivered is the number of sends answered with success.
func (f *FCM) Delivered() int64 { return f.delivered.Load() }

// WaitDelivered blocks until at least n sends were answered with success,
// or ctx ends.
func (f *FCM) WaitDelivered(ctx context.Context, n int64) error {
	// Registered before the first check, so that record, which counts
	// first and looks at waiters second, cannot skip the wake-up we need.
	f.waiters.Add(1)
	defer f.waiters.Add(-1)
	for {
		f.mu.Lock()
		ch := f.changed
		f.mu.Unlock()
		// Checked after taking ch: a delivery counted before this load
		// is seen here, one counted after it closes ch.
		if f.delivered.Load() >= n {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("fake: %d of %d FCM sends delivered: %w", f.delivered.Load(), n, ctx.Err())
		}
	}
}

// behaviourFor consumes one use of token's script, if any.
func (f *FCM) behaviourFor(token string) FCMBehavior {
	f.mu.Lock()
	defer f.mu.Unlock()
	s, ok := f.scripts[token]
	if !ok {
		return f.def
	}
	b := *s
	if s.Times > 0 {
		s.Times--
		if s.Times == 0 {
			delete(f.scripts, token)
		}
	}
	return b
}

// record stores the request (unless counting only) and wakes waiters.
func (f *FCM) record(r *FCMRequest) {
	f.requests.Add(1)
	r.At = f.opts.Now()
	if r.Status == http.StatusOK {
		f.delivered.Add(1)
	}
	if f.opts.CountOnly && f.waiters.Load() == 0 {
		return // the benchmark path: counters only, no lock held across sends
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

// decodeSend parses a send body. A counting-only fake decodes just the
// target, in one pass; otherwise the message is kept as sent.
func (f *FCM) decodeSend(raw []byte) (FCMRequest, fcmTarget, error) {
	if f.opts.CountOnly {
		var body struct {
			ValidateOnly bool       `json:"validate_only"`
			Message      *fcmTarget `json:"message"`
		}
		if err := json.Unmarshal(raw, &body); err != nil {
			return FCMRequest{}, fcmTarget{}, err
		}
		if body.Message == nil {
			return FCMRequest{}, fcmTarget{}, errors.New("no message")
		}
		return FCMRequest{Token: body.Message.Token, ValidateOnly: body.ValidateOnly}, *body.Message, nil
	}
	var body fcmSendBody
	if err := json.Unmarshal(raw, &body); err != nil {
		return FCMRequest{}, fcmTarget{}, err
	}
	if len(body.Message) == 0 || string(body.Message) == "null" {
		return FCMRequest{}, fcmTarget{}, errors.New("no message")
	}
	var tgt fcmTarget
	if err := json.Unmarshal(body.Message, &tgt); err != nil {
		return FCMRequest{}, fcmTarget{}, fmt.Errorf("message is not an object: %w", err)
	}
	req := FCMRequest{Token: tgt.Token, ValidateOnly: body.ValidateOnly, Raw: body.Message}
	_ = json.Unmarshal(body.Message, &req.Message) // known to be an object by now
	return req, tgt, nil
}

type fcmSendBody struct {
	ValidateOnly bool            `json:"validate_only"`
	Message      json.RawMessage `json:"message"`
}

type fcmTarget struct {
	Token     string `json:"token"`
	Topic     string `json:"topic"`
	Condition string `json:"condition"`
}

func (f *FCM) handleSend(w http.ResponseWriter, r *http.Request) {
	project := r.PathValue("project")
	auth, ok := f.authorize(w, r, project)
	if !ok {
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		return // client went away
	}
	req, tgt, err := f.decodeSend(raw)
	req.Project, req.Auth = project, auth
	if err != nil {
		req.Status = http.StatusBadRequest
		fcmWriteError(w, req.Status, "INVALID_ARGUMENT", FCMInvalidArgument,
			"Invalid JSON payload received: "+err.Error(), "message", 0)
		f.record(&req)
		return
	}
	if n := fcmCountTargets(tgt.Token, tgt.Topic, tgt.Condition); n != 1 {
		req.Status = http.StatusBadRequest
		fcmWriteError(w, req.Status, "INVALID_ARGUMENT", FCMInvalidArgument,
			"Exactly one of token, topic or condition must be set.", "message", 0)
		f.record(&req)
		return
	}

	if f.fcmFault(w, &req) {
		return
	}
	b := f.behaviourFor(tgt.Token)
	if b.Delay > 0 {
		f.held.Add(1)
		defer f.held.Add(-1)
		t := time.NewTimer(b.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	status := b.Status
	if status == 0 {
		status = fcmStatusFor(b.ErrorCode)
	}
	req.Status = status
	if status >= 200 && status < 300 {
		// Record before answering so that a client which saw the answer
		// also sees the request in Received.
		f.record(&req)
		id := f.nextID.Add(1)
		w.Header().Set("Content-Type", "application/json; charset=UTF-8")
		fmt.Fprintf(w, `{"name":"projects/%s/messages/0:%d"}`, project, id)
		return
	}
	f.record(&req)
	msg := b.Message
	if msg == "" {
		msg = fcmDefaultMessage(b.ErrorCode, status)
	}
	fcmWriteError(w, status, fcmStatusName(status), b.ErrorCode, msg, b.Field, b.RetryAfter)
}

func fcmCountTargets(ss ...string) int {
	n := 0
	for _, s := range ss {
		if s != "" {
			n++
		}
	}
	return n
}

// authorize checks the bearer token unless the fake runs without auth. It
// answers 401/403 itself and reports false when the request must stop.
func (f *FCM) authorize(w http.ResponseWriter, r *http.Request, project string) (string, bool) {
	h := r.Header.Get("Authorization")
	tok, hasBearer := strings.CutPrefix(h, "Bearer ")
	if f.opts.NoAuth {
		return tok, true
	}
	if !hasBearer || tok == "" {
		f.rejectAuth(w, project, http.StatusUnauthorized, "UNAUTHENTICATED",
			"Request is missing required authentication credential.")
		return "", false
	}
	f.mu.Lock()
	grant, ok := f.tokens[tok]
	f.mu.Unlock()
	if !ok || !f.opts.Now().Before(grant.expires) {
		f.rejectAuth(w, project, http.StatusUnauthorized, "UNAUTHENTICATED",
			"Request had invalid authentication credentials.")
		return tok, false
	}
	if grant.project != project {
		f.rejectAuth(w, project, http.StatusForbidden, "PERMISSION_DENIED",
			"Permission 'cloudmessaging.messages.create' denied on resource.")
		return tok, false
	}
	return tok, true
}

func (f *FCM) rejectAuth(w http.ResponseWriter, project string, status int, name, msg string) {
	f.opts.Logger.Warn("fake fcm: rejected send", "project", project, "status", status, "reason", msg)
	fcmWriteError(w, status, name, "", msg, "", 0)
	f.record(&FCMRequest{Project: project, Status: status})
}
