package web

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/pushpull/pushpull/web/apierr"
)

// Options configure the two listeners.
type Options struct {
	APIAddr       string // default "127.0.0.1:8895"
	ClientAddr    string // default ":8893"
	APITLSCert    string // both or neither: serve the publisher listener over TLS
	APITLSKey     string
	ClientTLSCert string
	ClientTLSKey  string
	// MaxBodyBytes bounds request bodies on the publisher listener
	// (default 1 MiB). The client listener allows 64 KiB.
	MaxBodyBytes int64
	// Ready is consulted by /readyz besides the server's own state
	// (starting, draining); it returns an error when a dependency cannot
	// serve (the dispatcher is not running, the DB cannot be written). It
	// is called on every /readyz request: cache what is expensive.
	Ready func() error
	// TrustedProxies are the CIDRs of reverse proxies whose
	// X-Forwarded-For is believed for the client address (rate limits,
	// logs). Empty: the peer address, always.
	TrustedProxies []string
	// Mappers turn domain errors into API errors (see apierr.From).
	Mappers []apierr.Mapper
	// OwnBodyLimit lists publisher routes (Echo patterns) that read their
	// body with a cap of their own (the Bitrix relay: 16 MiB batches);
	// MaxBodyBytes does not apply to them.
	OwnBodyLimit []string
	Version      string
	Logger       *slog.Logger
}

func (o *Options) setDefaults() {
	if o.APIAddr == "" {
		o.APIAddr = "127.0.0.1:8895"
	}
	if o.ClientAddr == "" {
		o.ClientAddr = ":8893"
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = 1 << 20
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
}

// Validate names the first bad option.
func (o Options) Validate() error {
	if (o.APITLSCert == "") != (o.APITLSKey == "") {
		return errors.New("api.tls_cert: tls_cert and tls_key go together")
	}
	if (o.ClientTLSCert == "") != (o.ClientTLSKey == "") {
		return errors.New("client.tls_cert: tls_cert and tls_key go together")
	}
	if o.MaxBodyBytes < 0 {
		return errors.New("api.max_body_bytes: must not be negative")
	}
	for _, c := range o.TrustedProxies {
		if _, _, err := net.ParseCIDR(c); err != nil {
			return fmt.Errorf("server.trusted_proxies: %q is not a CIDR (e.g. 10.0.0.0/8, 127.0.0.1/32)", c)
		}
	}
	return nil
}

// ClientMaxBodyBytes bounds request bodies on the client listener.
const ClientMaxBodyBytes = 64 << 10

// Server holds both listeners. Add routes to API and Client before Serve.
type Server struct {
	// API is the publisher listener's router.
	API *echo.Echo
	// Client is the client listener's router.
	Client *echo.Echo

	o        Options
	ready    atomic.Bool
	draining atomic.Bool

	mu        sync.Mutex
	lnAPI     net.Listener
	lnClient  net.Listener
	srvAPI    *http.Server
	srvClient *http.Server
	wg        sync.WaitGroup
}

// New builds both routers with the shared middleware and health routes.
func New(o Options) (*Server, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o.setDefaults()
	s := &Server{o: o}
	s.API = s.newEcho("api", o.MaxBodyBytes)
	s.Client = s.newEcho("client", ClientMaxBodyBytes)
	return s, nil
}

func (s *Server) newEcho(name string, bodyLimit int64) *echo.Echo {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	// The peer address, never X-Forwarded-For/X-Real-IP: those are set by
	// the client unless a trusted proxy is in front, and rate limits and
	// logs key on this address. Configured proxies may speak for clients.
	e.IPExtractor = echo.ExtractIPDirect()
	if len(s.o.TrustedProxies) > 0 {
		opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
		for _, c := range s.o.TrustedProxies {
			_, n, _ := net.ParseCIDR(c)
			opts = append(opts, echo.TrustIPRange(n))
		}
		e.IPExtractor = echo.ExtractIPFromXFFHeader(opts...)
	}
	e.HTTPErrorHandler = apierr.Handler(s.o.Logger, s.o.Mappers...)
	e.Use(middleware.RequestIDWithConfig(middleware.RequestIDConfig{Generator: newRequestID}))
	e.Use(accessLog(s.o.Logger.With("listener", name)))
	e.Use(middleware.Recover())
	e.Use(middleware.BodyLimitWithConfig(middleware.BodyLimitConfig{
		Limit:   strconv.FormatInt(bodyLimit, 10) + "B",
		Skipper: func(c echo.Context) bool { return name == "api" && slices.Contains(s.o.OwnBodyLimit, c.Path()) },
	}))
	e.GET("/healthz", func(c echo.Context) error {
		return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.o.Version})
	})
	e.GET("/readyz", s.readyz)
	return e
}

// Readiness errors of Server.Ready.
var (
	// ErrStarting: Serve has not run yet.
	ErrStarting = errors.New("starting")
	// ErrDraining: shutdown began (Drain or Shutdown).
	ErrDraining = errors.New("draining: shutting down")
)

// Ready is what /readyz answers: ErrStarting until Serve, ErrDraining once
// shutdown began, else the error of Options.Ready (a dependency that
// cannot serve: the dispatcher stopped, the database not writable), else
// nil. /healthz, by contrast, answers 200 for as long as the process
// serves HTTP at all (liveness).
func (s *Server) Ready() error {
	switch {
	case s.draining.Load():
		return ErrDraining
	case !s.ready.Load():
		return ErrStarting
	}
	if s.o.Ready != nil {
		if err := s.o.Ready(); err != nil {
			return fmt.Errorf("not ready: %w", err)
		}
	}
	return nil
}

func (s *Server) readyz(c echo.Context) error {
	if err := s.Ready(); err != nil {
		return &apierr.Error{Code: apierr.CodeUnavailable, Message: err.Error(), Err: err}
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ready", "version": s.o.Version})
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// LogPathKey is the echo.Context key under which a handler leaves the path
// the access log prints instead of the request's (whose path holds a
// secret, like the relay's).
const LogPathKey = "pushpull.log_path"

// accessLog logs one line per request with its latency. Query strings are
// left out: client tokens travel in them.
func accessLog(log *slog.Logger) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			req, res := c.Request(), c.Response()
			path := req.URL.Path
			if p, ok := c.Get(LogPathKey).(string); ok {
				path = p
			}
			lvl := slog.LevelInfo
			if res.Status >= 500 {
				lvl = slog.LevelError
			}
			if c.Path() == "/healthz" || c.Path() == "/readyz" {
				lvl = slog.LevelDebug
			}
			log.Log(req.Context(), lvl, "request",
				"method", req.Method, "path", path, "route", c.Path(),
				"status", res.Status, "bytes", res.Size,
				"latency_ms", float64(time.Since(start).Microseconds())/1000,
				"remote", c.RealIP(), "request_id", res.Header().Get(echo.HeaderXRequestID))
			return nil
		}
	}
}

// ListenError names the listener and address that could not be bound.
type ListenError struct {
	Listener, Addr string
	Err            error
}

func (e *ListenError) Error() string {
	return fmt.Sprintf("%s listener %s: %v", e.Listener, e.Addr, e.Err)
}

func (e *ListenError) Unwrap() error { return e.Err }

// Listen binds both addresses (and loads TLS certificates) without serving
// yet, so that startup fails early and clearly.
func (s *Server) Listen() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	la, err := listen("api", s.o.APIAddr, s.o.APITLSCert, s.o.APITLSKey)
	if err != nil {
		return err
	}
	lc, err := listen("client", s.o.ClientAddr, s.o.ClientTLSCert, s.o.ClientTLSKey)
	if err != nil {
		la.Close()
		return err
	}
	s.lnAPI, s.lnClient = la, lc
	return nil
}

func listen(name, addr, cert, key string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, &ListenError{Listener: name, Addr: addr, Err: err}
	}
	if cert != "" {
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			ln.Close()
			return nil, &ListenError{Listener: name, Addr: addr, Err: fmt.Errorf("tls: %w", err)}
		}
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{pair}, MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}})
	}
	return ln, nil
}

// APIAddr is the publisher listener's bound address (after Listen).
func (s *Server) APIAddr() string { return s.lnAPI.Addr().String() }

// ClientAddr is the client listener's bound address (after Listen).
func (s *Server) ClientAddr() string { return s.lnClient.Addr().String() }

// Serve starts serving both listeners in the background and marks the
// server ready. Errors other than a clean shutdown are sent on the
// returned channel.
func (s *Server) Serve() <-chan error {
	errc := make(chan error, 2)
	s.mu.Lock()
	s.srvAPI = s.httpServer(s.API)
	s.srvClient = s.httpServer(s.Client)
	for _, p := range []struct {
		srv *http.Server
		ln  net.Listener
		nm  string
	}{{s.srvAPI, s.lnAPI, "api"}, {s.srvClient, s.lnClient, "client"}} {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			if err := p.srv.Serve(p.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				errc <- fmt.Errorf("%s listener: %w", p.nm, err)
			}
		}()
	}
	s.mu.Unlock()
	s.ready.Store(true)
	return errc
}

func (s *Server) httpServer(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.o.Logger.Handler(), slog.LevelDebug),
	}
}

// Drain marks the server not ready, so load balancers stop sending new
// work, before Shutdown.
func (s *Server) Drain() { s.draining.Store(true) }

// Shutdown stops accepting, waits for in-flight requests until ctx ends,
// then closes what is left. Hijacked connections (WebSocket) are not
// waited for: the hub closes them.
func (s *Server) Shutdown(ctx context.Context) error {
	s.Drain()
	s.mu.Lock()
	srvs := []*http.Server{s.srvAPI, s.srvClient}
	s.mu.Unlock()
	var errs []error
	var wg sync.WaitGroup
	var emu sync.Mutex
	for _, srv := range srvs {
		if srv == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
				emu.Lock()
				errs = append(errs, err)
				emu.Unlock()
			}
		}()
	}
	wg.Wait()
	if s.srvAPI == nil {
		// Listen without Serve: release the sockets.
		if s.lnAPI != nil {
			s.lnAPI.Close()
		}
		if s.lnClient != nil {
			s.lnClient.Close()
		}
	}
	s.wg.Wait()
	return errors.Join(errs...)
}
