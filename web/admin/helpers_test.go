package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
	"github.com/pushpull/pushpull/web/client"
	"github.com/pushpull/pushpull/web/metrics"
)

const testKey = "admin-test-key-0123456789abcdef"

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// env is a gateway's worth of real parts on a temp bbolt file: the
// publisher router with the admin mounted, and a client router for
// WebSockets.
type env struct {
	t       testing.TB
	metrics prometheus.Gatherer
	admin   *Admin
	keys    *api.Keys
	clock   *clock
	logs    *syncBuffer // what the admin logged
	url     string      // publisher listener
	client  string      // client listener
	tokens  *token.Issuer
	http    *http.Client
}

func newEnv(t testing.TB, o Options) *env {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "admin.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	q, err := queue.Open(db, queue.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(db, devices.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	// No provider: every push is dead-lettered "no provider", which is
	// how these tests make dead letters.
	ps, err := push.New(q, reg, nil, push.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := ps.Start(); err != nil {
		t.Fatal(err)
	}
	lv, err := live.New(live.Options{}, h, ps)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Options{Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New("test")
	m.WatchQueue(q)
	m.WatchHub(h)
	m.WatchPush(ps.ProviderStats)
	m.WatchDB(db)

	logs := &syncBuffer{}
	alog := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	if o.Now == nil {
		o.Now = clk.Now
	}
	keys := api.NewKeys([]string{testKey})
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(log, api.MapError)
	e.Use(m.Middleware("api"))
	srv := &api.Server{Queue: q, Devices: reg, Push: ps, Live: lv, Tokens: tokens, Logger: log}
	srv.Register(e.Group("/api/v1", api.RequireKey(keys)))
	a, err := Register(e, Deps{Keys: keys, API: srv, Metrics: m.Registry, Logger: alog}, o)
	if err != nil {
		t.Fatal(err)
	}
	ce := echo.New()
	ce.HTTPErrorHandler = apierr.Handler(log)
	client.RegisterLive(ce, lv, tokens, client.LiveOptions{})

	hs := httptest.NewServer(e)
	cs := httptest.NewServer(ce)
	t.Cleanup(func() {
		cs.Close()
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = ps.Stop(ctx)
		lv.Close()
		h.Close()
		q.Close()
		reg.Close()
		db.Close()
	})
	return &env{t: t, metrics: m.Registry, admin: a, keys: keys, clock: clk, logs: logs, url: hs.URL, client: cs.URL, tokens: tokens, http: hs.Client()}
}

// browser is an HTTP client with a cookie jar that does not follow
// redirects, so tests see the login answer itself.
func (e *env) browser() *http.Client {
	jar, _ := cookiejar.New(nil)
	return &http.Client{
		Jar:           jar,
		Transport:     e.http.Transport,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// login posts key from c and returns the answer.
func (e *env) login(c *http.Client, key string) *http.Response {
	e.t.Helper()
	res, err := c.PostForm(e.url+"/admin/login", url.Values{"key": {key}})
	if err != nil {
		e.t.Fatal(err)
	}
	res.Body.Close()
	return res
}

// loggedIn returns a browser holding a session.
func (e *env) loggedIn() *http.Client {
	e.t.Helper()
	c := e.browser()
	if res := e.login(c, testKey); res.StatusCode != http.StatusSeeOther {
		e.t.Fatalf("login: %d", res.StatusCode)
	}
	return c
}

// call sends method path with c (JSON body when body is not nil, and the
// CSRF header when csrf) and decodes the JSON answer.
func (e *env) call(c *http.Client, method, path string, body any, csrf bool) (int, map[string]any) {
	e.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, e.url+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if csrf {
		req.Header.Set(CSRFHeader, "1")
	}
	res, err := c.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var m map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			e.t.Fatalf("%s %s: %d non-JSON answer %q", method, path, res.StatusCode, raw)
		}
	}
	return res.StatusCode, m
}

// stats reads /admin/api/stats.
func (e *env) stats(c *http.Client) Snapshot {
	e.t.Helper()
	res, err := c.Get(e.url + "/admin/api/stats")
	if err != nil {
		e.t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		e.t.Fatalf("stats: %d", res.StatusCode)
	}
	var s Snapshot
	if err := json.NewDecoder(res.Body).Decode(&s); err != nil {
		e.t.Fatal(err)
	}
	return s
}

func errCode(m map[string]any) string {
	er, _ := m["error"].(map[string]any)
	code, _ := er["code"].(string)
	return code
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// syncBuffer is a bytes.Buffer safe for the logger's writes and the
// test's reads at once.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
