package api

import (
	"bytes"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/apierr"
)

const testKey = "test-api-key-0123456789"

// testAPI is the publisher API over real stores on a temp bbolt file.
type testAPI struct {
	t      *testing.T
	srv    *Server
	db     *bolt.DB
	e      *echo.Echo
	client *http.Client
	url    string
}

// newStores opens the queue and the device registry on a temp bbolt file,
// closed when the test ends.
func newStores(t *testing.T) (*bolt.DB, *queue.Queue, *devices.Registry) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "t.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	q, err := queue.Open(db, queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	reg, err := devices.Open(db, devices.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { reg.Close() })
	return db, q, reg
}

// newFakeAPNs returns the real APNs provider with one app (token auth)
// against a fake APNs, both closed when the test ends.
func newFakeAPNs(t *testing.T, appID string) (*apns.Provider, *fake.APNs) {
	t.Helper()
	fa, err := fake.NewAPNs(fake.APNsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(fa.Close)
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	fa.AddKey("KEY1234567", "TEAM123456", pub)
	pool := x509.NewCertPool()
	pool.AddCert(fa.Certificate())
	ap, err := apns.New(apns.Options{
		Apps:          []apns.App{{ID: appID, Topic: "com.example.app", Key: keyPEM, KeyID: "KEY1234567", TeamID: "TEAM123456"}},
		ProductionURL: fa.URL(), SandboxURL: fa.URL(), RootCAs: pool, Timeout: 5 * time.Second,
		Logger: slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	return ap, fa
}

func newTestAPI(t *testing.T) *testAPI {
	t.Helper()
	db, q, reg := newStores(t)
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	h, err := hub.New(hub.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := push.New(q, reg, nil, push.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	lv, err := live.New(live.Options{}, h, ps)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Options{Secret: []byte(strings.Repeat("j", 32))})
	if err != nil {
		t.Fatal(err)
	}
	s := &Server{Queue: q, Devices: reg, Push: ps, Live: lv, Tokens: tokens, Logger: log, ClientURL: "https://push.example.com"}
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(log, MapError)
	e.Use(middleware.BodyLimit("1M"))
	s.Register(e.Group("/api/v1", RequireKey(NewKeys([]string{testKey}))))
	hs := httptest.NewServer(e)
	t.Cleanup(func() {
		hs.Close()
		lv.Close()
		h.Close()
	})
	return &testAPI{t: t, srv: s, db: db, e: e, client: hs.Client(), url: hs.URL}
}

// call sends a request with the test key and decodes the JSON answer.
func (a *testAPI) call(method, path string, body any) (int, map[string]any) {
	a.t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	default:
		buf, _ := json.Marshal(b)
		rd = bytes.NewReader(buf)
	}
	req, _ := http.NewRequest(method, a.url+path, rd)
	req.Header.Set("Authorization", "Bearer "+testKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := a.client.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	raw, _ := io.ReadAll(res.Body)
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			a.t.Fatalf("%s %s: non-JSON answer %q", method, path, raw)
		}
	}
	return res.StatusCode, m
}

// errField returns the code and field of an error answer.
func errField(m map[string]any) (string, string) {
	e, _ := m["error"].(map[string]any)
	code, _ := e["code"].(string)
	field, _ := e["field"].(string)
	return code, field
}
