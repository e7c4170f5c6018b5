package client

// Hostile input on the client listener: forged, expired and wrongly signed
// JWTs on every route, a token of user A used against user B's events,
// devices and watches, WebSocket origins, and malformed bodies. Each gets
// the documented error and changes nothing, checked by reading the state
// back after every case.

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
	"github.com/labstack/echo/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

var hostileSecret = []byte(strings.Repeat("h", 32))

// hostileEnv is the client listener's live and device routes over a real
// hub, live service and registry.
type hostileEnv struct {
	t      *testing.T
	url    string
	db     *bolt.DB
	svc    *live.Service
	reg    *devices.Registry
	tokens *token.Issuer
}

func newHostileEnv(t *testing.T) *hostileEnv {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(db, devices.Options{PurgeInterval: -1})
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := live.New(live.Options{}, h, &recordingPusher{})
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Options{Secret: hostileSecret})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(slog.New(slog.NewTextHandler(io.Discard, nil)), api.MapError)
	lots := RateLimit{Rate: 10000, Burst: 10000}
	RegisterLive(e, svc, tokens, LiveOptions{PingInterval: time.Second, PerIP: lots})
	RegisterDevices(e.Group(""), reg, tokens, DevicesOptions{PerUser: lots})
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		h.CloseAll(1001, "test over")
		srv.Close()
		svc.Close()
		h.Close()
		reg.Close()
		db.Close()
	})
	return &hostileEnv{t: t, url: srv.URL, db: db, svc: svc, reg: reg, tokens: tokens}
}

func (e *hostileEnv) token(user string, tags ...string) string {
	tok, _, err := e.tokens.Mint(user, time.Hour, tags, "web")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// do sends a request with a bearer token (none when tok is empty).
func (e *hostileEnv) do(method, path, tok, body string, hdr map[string]string) (int, []byte) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	return res.StatusCode, raw
}

// digest hashes the registry file and the watch state of the test users.
func (e *hostileEnv) digest() string {
	e.t.Helper()
	h := sha256.New()
	err := e.db.View(func(tx *bolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bolt.Bucket) error {
			return b.ForEach(func(k, v []byte) error {
				fmt.Fprintf(h, "%q %q %q\n", name, k, v)
				return nil
			})
		})
	})
	if err != nil {
		e.t.Fatal(err)
	}
	for _, tag := range []string{"SECRET", "GRANTED", "OTHER"} {
		w := e.svc.Watchers(tag)
		slices.Sort(w)
		fmt.Fprintf(h, "%s=%v\n", tag, w)
	}
	return fmt.Sprintf("%x", h.Sum(nil))
}

// forged returns tokens that must all be refused with 401.
func forged(t *testing.T) map[string]string {
	t.Helper()
	now := time.Now()
	claims := func(sub string, iat, exp time.Time) jwt.MapClaims {
		m := jwt.MapClaims{"sub": sub}
		if !iat.IsZero() {
			m["iat"] = iat.Unix()
		}
		if !exp.IsZero() {
			m["exp"] = exp.Unix()
		}
		return m
	}
	sign := func(m jwt.SigningMethod, key any, c jwt.MapClaims) string {
		s, err := jwt.NewWithClaims(m, c).SignedString(key)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := claims("A", now, now.Add(time.Hour))
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := sign(jwt.SigningMethodHS256, hostileSecret, good)
	parts := strings.Split(valid, ".")
	return map[string]string{
		"garbage":           "not-a-jwt",
		"three dots":        "a.b.c",
		"alg none":          sign(jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, good),
		"HS384 same secret": sign(jwt.SigningMethodHS384, hostileSecret, good),
		"HS512 same secret": sign(jwt.SigningMethodHS512, hostileSecret, good),
		"HS256 wrong key":   sign(jwt.SigningMethodHS256, []byte(strings.Repeat("x", 32)), good),
		"RS256":             sign(jwt.SigningMethodRS256, rsaKey, good),
		"expired":           sign(jwt.SigningMethodHS256, hostileSecret, claims("A", now.Add(-2*time.Hour), now.Add(-time.Hour))),
		"no exp":            sign(jwt.SigningMethodHS256, hostileSecret, claims("A", now, time.Time{})),
		"empty sub":         sign(jwt.SigningMethodHS256, hostileSecret, claims("", now, now.Add(time.Hour))),
		"iat in the future": sign(jwt.SigningMethodHS256, hostileSecret, claims("A", now.Add(time.Hour), now.Add(2*time.Hour))),
		"signature removed": parts[0] + "." + parts[1] + ".",
		"payload swapped":   parts[0] + "." + strings.TrimRight(jwtPart(t, `{"sub":"B","exp":9999999999,"iat":1}`), "=") + "." + parts[2],
	}
}

func jwtPart(t *testing.T, s string) string {
	t.Helper()
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// seedClient gives the state something to lose: B has a device and
// watches SECRET; A was granted GRANTED; B has an event in history.
func seedClient(t *testing.T, e *hostileEnv) {
	t.Helper()
	if code, raw := e.do("POST", "/sub/devices", e.token("B"), `{"device_id":"devB","platform":"fcm","token":"tokB:APA91b","app_id":"App"}`, nil); code/100 != 2 {
		t.Fatalf("seed device: %d %s", code, raw)
	}
	if err := e.svc.AddWatch([]string{"B"}, []string{"SECRET"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.svc.AddWatch([]string{"A"}, []string{"GRANTED"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Publish(context.Background(), []live.Event{{Users: []string{"B"}, ModuleID: "secret", Command: "for-b-only"}}); err != nil {
		t.Fatal(err)
	}
}

func TestClientHostileTokens(t *testing.T) {
	e := newHostileEnv(t)
	seedClient(t, e)
	before := e.digest()
	routes := []struct{ method, path, body string }{
		{"GET", "/sub/ws", ""}, {"GET", "/sub/poll?wait=0", ""}, {"GET", "/sub/sse", ""},
		{"POST", "/sub/watch", `{"tags":["GRANTED"]}`},
		{"GET", "/sub/devices", ""}, {"DELETE", "/sub/devices/devB", ""},
		{"POST", "/sub/devices", `{"device_id":"x","platform":"fcm","token":"t:APA91b"}`},
	}
	toks := forged(t)
	toks["missing"] = ""
	n := 0
	for name, tok := range toks {
		for _, r := range routes {
			for _, inQuery := range []bool{false, true} {
				path, bearer := r.path, tok
				if inQuery && tok != "" {
					sep := "?"
					if strings.Contains(path, "?") {
						sep = "&"
					}
					path, bearer = path+sep+"token="+tok, ""
				}
				code, raw := e.do(r.method, path, bearer, r.body, nil)
				n++
				if code != http.StatusUnauthorized || !strings.Contains(string(raw), `"unauthenticated"`) {
					t.Errorf("%s token on %s %s (query %v): %d %s", name, r.method, r.path, inQuery, code, raw)
				}
			}
		}
	}
	// A real WebSocket client is refused before the upgrade.
	for name, tok := range toks {
		_, res, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(e.url, "http")+"/sub/ws?token="+tok, nil)
		n++
		if err == nil || res == nil || res.StatusCode != http.StatusUnauthorized {
			t.Errorf("%s token: WebSocket dial %v %v", name, res, err)
		}
	}
	if e.digest() != before {
		t.Fatal("state changed")
	}
	t.Logf("FIGURE hostile/client-tokens cases=%d accepted=0", n)
}

func TestClientHostileCrossUser(t *testing.T) {
	e := newHostileEnv(t)
	seedClient(t, e)
	before := e.digest()
	a := e.token("A")
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		code, field              string
	}{
		{"register naming B", "POST", "/sub/devices", `{"user":"B","platform":"fcm","token":"evil:APA91b"}`, nil, 400, "invalid_argument", "user"},
		{"delete B's device", "DELETE", "/sub/devices/devB", "", nil, 404, "not_found", ""},
		{"extend a tag not granted", "POST", "/sub/watch", `{"tags":["SECRET"]}`, nil, 403, "permission_denied", ""},
		{"extend granted and not", "POST", "/sub/watch", `{"tags":["GRANTED","SECRET"]}`, nil, 403, "permission_denied", ""},
		{"watch 101 tags", "POST", "/sub/watch", `{"tags":[` + strings.Repeat(`"GRANTED",`, 100) + `"GRANTED"]}`, nil, 400, "invalid_argument", "tags"},
		{"watch malformed", "POST", "/sub/watch", `{"tags":[`, nil, 400, "invalid_argument", ""},
		{"watch deep", "POST", "/sub/watch", `{"tags":` + strings.Repeat("[", 50000) + strings.Repeat("]", 50000) + `}`, nil, 400, "invalid_argument", ""},
		{"watch NUL tag", "POST", "/sub/watch", `{"tags":["GRAN\u0000TED"]}`, nil, 400, "invalid_argument", "tags[0]"},
		{"device invalid UTF-8", "POST", "/sub/devices", "{\"platform\":\"fcm\",\"token\":\"t\xff\"}", nil, 400, "invalid_argument", ""},
		{"device control char", "POST", "/sub/devices", `{"platform":"fcm","token":"t\u0007x"}`, nil, 400, "invalid_argument", "token"},
		{"device CRLF apns", "POST", "/sub/devices", `{"platform":"apns","token":"abab\r\nX: y"}`, nil, 400, "invalid_argument", "token"},
		{"device huge", "POST", "/sub/devices", `{"platform":"fcm","token":"` + strings.Repeat("a", 5000) + `"}`, nil, 400, "invalid_argument", "token"},
		{"device traversal", "DELETE", "/sub/devices/..%2FdevB", "", nil, 404, "not_found", ""},
		{"device wrong types", "POST", "/sub/devices", `{"platform":1,"token":["x"]}`, nil, 400, "invalid_argument", ""},
		{"WebSocket from a foreign origin", "GET", "/sub/ws", "", map[string]string{
			"Origin": "https://evil.example", "Connection": "Upgrade", "Upgrade": "websocket",
			"Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
		}, 403, "", ""},
	}
	for _, c := range cases {
		code, raw := e.do(c.method, c.path, a, c.body, c.hdr)
		var m struct {
			Error struct{ Code, Field, Message string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &m)
		if code != c.status || (c.code != "" && m.Error.Code != c.code) || (c.field != "" && m.Error.Field != c.field) {
			t.Errorf("%s: %d %s field %q (%s), want %d %s field %q", c.name, code, m.Error.Code, m.Error.Field, raw, c.status, c.code, c.field)
		}
		if e.digest() != before {
			t.Fatalf("%s: state changed", c.name)
		}
	}

	// A device id that B already uses cannot be taken over by A.
	code, raw := e.do("POST", "/sub/devices", a, `{"device_id":"devB","platform":"fcm","token":"evil:APA91b","app_id":"App"}`, nil)
	d, err := e.reg.Get(context.Background(), "devB")
	if code != http.StatusConflict || err != nil || d.User != "B" || d.Token != "tokB:APA91b" {
		t.Errorf("A re-registered B's device id: %d %s; registry now %+v %v", code, raw, d, err)
	}

	// The same phone handed to another account presents the stored token:
	// that move is allowed (done last: it changes the state).
	defer func() {
		code, raw := e.do("POST", "/sub/devices", a, `{"device_id":"devB","platform":"fcm","token":"tokB:APA91b","app_id":"App"}`, nil)
		if d, err := e.reg.Get(context.Background(), "devB"); code != http.StatusOK || err != nil || d.User != "A" {
			t.Errorf("handover with the device's own token: %d %s; registry %+v %v", code, raw, d, err)
		}
	}()

	// A's poll, whatever it names, never returns B's events.
	for _, q := range []string{"", "&user=B", "&channel=user:B", "&since=0"} {
		code, raw := e.do("GET", "/sub/poll?wait=0"+q, a, "", nil)
		if code != 200 || strings.Contains(string(raw), "for-b-only") {
			t.Errorf("poll as A%s: %d %s", q, code, raw)
		}
	}
	// A's WebSocket frames cannot extend a watch A was not granted.
	c, _, err := websocket.Dial(context.Background(), "ws"+strings.TrimPrefix(e.url, "http")+"/sub/ws?token="+a, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.CloseNow()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"op":"watch","tags":["SECRET"]}`)); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(ctx, websocket.MessageText, []byte(`{"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	// The pong comes after the watch frame was handled.
	for {
		_, msg, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("reading: %v", err)
		}
		if strings.Contains(string(msg), "for-b-only") {
			t.Fatalf("A's socket got B's event: %s", msg)
		}
		if strings.Contains(string(msg), `"pong"`) {
			break
		}
	}
	if slices.Contains(e.svc.Watchers("SECRET"), "A") {
		t.Fatal("A extended SECRET over its WebSocket")
	}
	t.Logf("FIGURE hostile/client-cross-user cases=%d state_changes=0", len(cases)+9)
}
