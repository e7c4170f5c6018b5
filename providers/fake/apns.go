package fake

import (
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// APNs reasons the fake answers with, as Apple spells them.
const (
	APNsBadDeviceToken         = "BadDeviceToken"
	APNsBadPath                = "BadPath"
	APNsBadPriority            = "BadPriority"
	APNsBadExpirationDate      = "BadExpirationDate"
	APNsBadCollapseID          = "BadCollapseId"
	APNsBadMessageID           = "BadMessageId"
	APNsBadTopic               = "BadTopic"
	APNsDeviceTokenNotForTopic = "DeviceTokenNotForTopic"
	APNsExpiredProviderToken   = "ExpiredProviderToken"
	APNsExpiredToken           = "ExpiredToken"
	APNsIdleTimeout            = "IdleTimeout"
	APNsInternalServerError    = "InternalServerError"
	APNsInvalidProviderToken   = "InvalidProviderToken"
	APNsInvalidPushType        = "InvalidPushType"
	APNsMethodNotAllowed       = "MethodNotAllowed"
	APNsMissingDeviceToken     = "MissingDeviceToken"
	APNsMissingProviderToken   = "MissingProviderToken"
	APNsMissingTopic           = "MissingTopic"
	APNsPayloadEmpty           = "PayloadEmpty"
	APNsPayloadTooLarge        = "PayloadTooLarge"
	APNsServiceUnavailable     = "ServiceUnavailable"
	APNsShutdown               = "Shutdown"
	APNsTooManyRequests        = "TooManyRequests"
	APNsTopicDisallowed        = "TopicDisallowed"
	APNsUnregistered           = "Unregistered"
)

// APNs payload limits enforced by the fake (Apple's documented limits).
const (
	APNsMaxPayload     = 4096
	APNsMaxVoIPPayload = 5120
)

// APNsOptions configures a fake APNs. The zero value records every request,
// verifies provider tokens against keys added with AddKey and accepts any
// client certificate.
type APNsOptions struct {
	// Now is the clock used to judge provider-token age and Behavior.Until.
	// Default time.Now.
	Now func() time.Time
	// CountOnly keeps counters but records nothing (Received stays empty):
	// for benchmarks.
	CountOnly bool
	// MaxConcurrentStreams is the HTTP/2 stream limit advertised per
	// connection. Default 1000, like APNs.
	MaxConcurrentStreams int
	// ClientCAs, when set, verifies client certificates (certificate auth)
	// against this pool; nil accepts any client certificate.
	ClientCAs *x509.CertPool
}

// Behavior is how the fake answers a push. The zero value is success.
type Behavior struct {
	// Status is the HTTP status to answer; 0 or 200 means success.
	Status int
	// Reason is the APNs reason put in the JSON error body.
	Reason string
	// Times is how many pushes this behaviour answers before it is dropped
	// (the default, or success, applies after); 0 means always.
	Times int
	// Until, when set, drops the behaviour once the fake's clock reaches it:
	// "answer 503 until 10:05".
	Until time.Time
	// Delay holds the answer back (wall-clock time), to exercise timeouts.
	Delay time.Duration
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter time.Duration
	// RawBody, when set, replaces the JSON error body verbatim (for
	// example a proxy's HTML page).
	RawBody string
}

// APNsRequest is one push as the fake received and answered it.
type APNsRequest struct {
	Method string
	Path   string
	// Token is the device token from the path.
	Token string
	// Header holds the apns-* request headers.
	Header     http.Header
	Topic      string
	PushType   string
	Priority   string
	CollapseID string
	Expiration string
	// Payload is the request body.
	Payload json.RawMessage
	// Bearer is the provider JWT (test keys only), with the KeyID and
	// TeamID it was verified against.
	Bearer, KeyID, TeamID string
	// ClientCertCN is the subject common name of the client certificate,
	// for certificate auth.
	ClientCertCN string
	// Status, Reason and APNsID are what the fake answered.
	Status int
	Reason string
	APNsID string
	// At is when the fake answered, on its clock.
	At time.Time
}

// APNs is a fake APNs provider API: HTTP/2 over TLS on a loopback port.
type APNs struct {
	opts    APNsOptions
	addr    string
	ca      *loopbackCA
	pool    *x509.CertPool
	cert    *x509.Certificate
	tlsConf *tls.Config // guarded by life once serving: RotateCertificate swaps it

	life   sync.Mutex // guards srv and closed: Down, Up, Close
	srv    *http.Server
	closed bool
	serveW sync.WaitGroup
	done   chan struct{} // closed by Close: wakes delayed answers

	mu       sync.Mutex
	scripts  map[string]*script
	def      script
	received []APNsRequest
	changed  chan struct{} // closed and replaced on delivery while waiters exist

	auth jwtVerifier
	// bodies recycles request-body buffers: every payload is read, even
	// when counting only, to enforce the size limit.
	bodies sync.Pool

	requests  atomic.Int64
	delivered atomic.Int64
	nextID    atomic.Uint64
	waiters   atomic.Int32

	faults faultState
}

// NewAPNs starts a fake APNs on a random loopback port.
func NewAPNs(opts APNsOptions) (*APNs, error) {
	if opts.MaxConcurrentStreams < 0 {
		return nil, errors.New("fake: APNsOptions.MaxConcurrentStreams must not be negative")
	}
	if opts.MaxConcurrentStreams == 0 {
		opts.MaxConcurrentStreams = 1000
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	ca, err := newLoopbackCA()
	if err != nil {
		return nil, err
	}
	cert, err := ca.issue()
	if err != nil {
		return nil, err
	}
	f := &APNs{
		opts:    opts,
		ca:      ca,
		pool:    ca.pool,
		cert:    ca.cert,
		done:    make(chan struct{}),
		scripts: make(map[string]*script),
		changed: make(chan struct{}),
		auth:    jwtVerifier{keys: make(map[string]apnsKey), seen: make(map[string]verifiedJWT)},
	}
	f.tlsConf = &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"h2"},
		MinVersion:   tls.VersionTLS12,
		ClientAuth:   tls.RequestClientCert,
	}
	if opts.ClientCAs != nil {
		f.tlsConf.ClientAuth = tls.VerifyClientCertIfGiven
		f.tlsConf.ClientCAs = opts.ClientCAs
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("fake: listen: %w", err)
	}
	f.addr = ln.Addr().String()
	f.serve(ln)
	return f, nil
}

// serve starts a fresh http.Server on ln; the caller holds life or owns f
// exclusively.
func (f *APNs) serve(ln net.Listener) {
	var protos http.Protocols
	protos.SetHTTP2(true) // APNs speaks HTTP/2 only
	srv := &http.Server{
		Handler:   f,
		TLSConfig: f.tlsConf.Clone(), // net/http edits it: one per server
		Protocols: &protos,
		HTTP2:     &http.HTTP2Config{MaxConcurrentStreams: f.opts.MaxConcurrentStreams},
		// Handshake noise from clients that are closed mid-test is expected.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	f.srv = srv
	f.serveW.Add(1)
	go func() {
		defer f.serveW.Done()
		_ = srv.ServeTLS(ln, "", "")
	}()
}

// URL is the base URL to give an APNs client as its host
// ("https://127.0.0.1:port").
func (f *APNs) URL() string { return "https://" + f.addr }

// CertPool returns a pool that trusts the fake's TLS certificate.
func (f *APNs) CertPool() *x509.CertPool { return f.pool }

// Certificate is the certificate authority that issues the fake's TLS
// certificates, to add to a pool that must trust several fakes (production
// and sandbox). It stays the same across RotateCertificate.
func (f *APNs) Certificate() *x509.Certificate { return f.cert }

// Close stops the server, ends delayed answers and waits for the server
// goroutines. It is idempotent.
func (f *APNs) Close() {
	f.life.Lock()
	if f.closed {
		f.life.Unlock()
		return
	}
	f.closed = true
	close(f.done)
	if f.srv != nil {
		_ = f.srv.Close()
		f.srv = nil
	}
	f.life.Unlock()
	f.serveW.Wait()
}

// Down closes the listener and every connection: until Up, clients get
// "connection refused".
func (f *APNs) Down() {
	f.life.Lock()
	defer f.life.Unlock()
	if f.srv != nil {
		_ = f.srv.Close()
		f.srv = nil
	}
}

// Up listens again on the same address after Down. It is a no-op when the
// fake is up.
func (f *APNs) Up() error {
	f.life.Lock()
	defer f.life.Unlock()
	if f.closed {
		return errors.New("fake: APNs is closed")
	}
	if f.srv != nil {
		return nil
	}
	ln, err := net.Listen("tcp", f.addr)
	if err != nil {
		return fmt.Errorf("fake: listen again on %s: %w", f.addr, err)
	}
	f.serve(ln)
	return nil
}

// AddKey registers the public half of a provider key: JWTs with this kid
// must be signed by it and carry iss = teamID.
func (f *APNs) AddKey(keyID, teamID string, pub *ecdsa.PublicKey) {
	f.auth.add(keyID, teamID, pub)
}

// Script sets how pushes to token are answered, replacing an earlier script.
func (f *APNs) Script(token string, b Behavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.scripts[token] = &script{b: b, left: b.Times}
}

// SetDefault sets how pushes to unscripted tokens are answered. A default
// with Times or Until reverts to success once used up.
func (f *APNs) SetDefault(b Behavior) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.def = script{b: b, left: b.Times}
}

// Received returns a copy of the pushes recorded so far, in arrival order.
func (f *APNs) Received() []APNsRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]APNsRequest(nil), f.received...)
}

// Requests is the number of pushes answered (any status).
func (f *APNs) Requests() int64 { return f.requests.Load() }

// Delivered is the number of pushes answered 200.
func (f *APNs) Delivered() int64 { return f.delivered.Load() }

// WaitDelivered blocks until at least n pushes were answered 200, or ctx
// ends.
func (f *APNs) WaitDelivered(ctx context.Context, n int64) error {
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
			return fmt.Errorf("fake: %d of %d APNs pushes delivered: %w", f.delivered.Load(), n, ctx.Err())
		}
	}
}

// script is a Behavior with its remaining uses.
type script struct {
	b    Behavior
	left int // uses left when b.Times > 0
}

// use consumes one use of s; ok is false when s is used up or expired.
func (s *script) use(now time.Time) (Behavior, bool) {
	if !s.b.Until.IsZero() && !now.Before(s.b.Until) {
		return Behavior{}, false
	}
	if s.b.Times > 0 {
		if s.left <= 0 {
			return Behavior{}, false
		}
		s.left--
	}
	return s.b, true
}

// behaviorFor consumes one use of the behaviour that answers token.
func (f *APNs) behaviorFor(token string) Behavior {
	now := f.opts.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if s, ok := f.scripts[token]; ok {
		if b, live := s.use(now); live {
			return b
		}
		delete(f.scripts, token)
	}
	b, _ := f.def.use(now)
	return b
}

// finish counts (and records) an answered push and wakes waiters.
func (f *APNs) finish(rec *APNsRequest) {
	f.requests.Add(1)
	rec.At = f.opts.Now()
	ok := rec.Status == http.StatusOK
	if ok {
		f.delivered.Add(1)
	}
	if f.opts.CountOnly && f.waiters.Load() == 0 {
		return
	}
	f.mu.Lock()
	if !f.opts.CountOnly {
		f.received = append(f.received, *rec)
	}
	if ok && f.waiters.Load() > 0 {
		close(f.changed)
		f.changed = make(chan struct{})
	}
	f.mu.Unlock()
}
