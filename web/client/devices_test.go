package client

import (
	"bytes"
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
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

type deviceEnv struct {
	t      *testing.T
	url    string
	tokens *token.Issuer
	reg    *devices.Registry
}

func newDeviceEnv(t *testing.T, o DevicesOptions) *deviceEnv {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "d.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(db, devices.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Options{Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(slog.New(slog.NewTextHandler(io.Discard, nil)), api.MapError)
	RegisterDevices(e.Group(""), reg, tokens, o)
	hs := httptest.NewServer(e)
	t.Cleanup(func() { hs.Close(); reg.Close(); db.Close() })
	return &deviceEnv{t: t, url: hs.URL, tokens: tokens, reg: reg}
}

func (d *deviceEnv) as(user, method, path string, body any) (int, map[string]any, http.Header) {
	d.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, d.url+path, rd)
	if user != "" {
		tok, _, err := d.tokens.Mint(user, time.Hour, nil, "mobile")
		if err != nil {
			d.t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		d.t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m, res.Header
}

func TestClientDevicesUserComesFromToken(t *testing.T) {
	d := newDeviceEnv(t, DevicesOptions{})
	tok := strings.Repeat("cd", 32)
	code, m, _ := d.as("alice", "POST", "/sub/devices", map[string]any{"device_id": "phone-a", "platform": "apns", "token": tok})
	if code != 201 || m["device"].(map[string]any)["user"] != "alice" {
		t.Fatalf("register: %d %v", code, m)
	}
	// A body that names a user is refused: the user is the token's.
	code, m, _ = d.as("mallory", "POST", "/sub/devices", map[string]any{"user": "alice", "platform": "fcm", "token": "x"})
	if e, _ := m["error"].(map[string]any); code != 400 || e["field"] != "user" {
		t.Fatalf("user in body: %d %v", code, m)
	}
	// Another user neither sees nor deletes alice's device.
	if code, m, _ = d.as("mallory", "GET", "/sub/devices", nil); code != 200 || len(m["devices"].([]any)) != 0 {
		t.Fatalf("mallory lists: %d %v", code, m)
	}
	if code, _, _ = d.as("mallory", "DELETE", "/sub/devices/phone-a", nil); code != 404 {
		t.Fatalf("mallory deletes: %d", code)
	}
	if _, err := d.reg.Get(t.Context(), "phone-a"); err != nil {
		t.Fatalf("device gone after a foreign delete: %v", err)
	}
	if code, _, _ = d.as("", "GET", "/sub/devices", nil); code != 401 {
		t.Fatalf("no token: %d", code)
	}
	if code, _, _ = d.as("alice", "DELETE", "/sub/devices/phone-a", nil); code != 200 {
		t.Fatalf("owner deletes: %d", code)
	}
}

func TestClientDevicesRateLimited(t *testing.T) {
	d := newDeviceEnv(t, DevicesOptions{PerUser: RateLimit{Rate: 0.001, Burst: 2}})
	for i := 0; i < 2; i++ {
		if code, m, _ := d.as("bob", "GET", "/sub/devices", nil); code != 200 {
			t.Fatalf("request %d: %d %v", i, code, m)
		}
	}
	code, m, h := d.as("bob", "GET", "/sub/devices", nil)
	if e, _ := m["error"].(map[string]any); code != 429 || e["code"] != "rate_limited" || h.Get("Retry-After") == "" {
		t.Fatalf("third request: %d %v %v", code, m, h)
	}
	// Another user has their own bucket.
	if code, _, _ := d.as("carol", "GET", "/sub/devices", nil); code != 200 {
		t.Fatalf("carol limited by bob's bucket: %d", code)
	}
}

func TestLimiterForgetsIdleKeys(t *testing.T) {
	now := time.Unix(0, 0)
	l := NewLimiter(RateLimit{Rate: 1, Burst: 2}, func() time.Time { return now })
	for i := 0; i < 100; i++ {
		l.Allow(strings.Repeat("k", i+1))
	}
	if l.Len() != 100 {
		t.Fatalf("len %d", l.Len())
	}
	now = now.Add(10 * time.Second)
	l.Allow("fresh")
	if l.Len() != 1 {
		t.Fatalf("idle buckets kept: %d", l.Len())
	}
}
