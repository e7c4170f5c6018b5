package main

// Security defaults of the real binary: where the listeners bind by
// default, that secrets never appear in logs, error answers, the client
// config endpoint or metrics, that a WebSocket from a foreign origin is
// refused, and that client endpoints are rate-limited. Also the promise
// about restarts: live history is lost and clients are told so.

import (
	"bytes"
	"context"
	"encoding/json"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushpull/pushpull/providers/fake"
)

func fakeUnregistered() fake.FCMBehavior { return fake.FCMBehavior{ErrorCode: fake.FCMUnregistered} }

func TestSecurityDefaults(t *testing.T) {
	cfg, err := loadConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	host, _, err := net.SplitHostPort(cfg.API.Addr)
	if err != nil || !net.ParseIP(host).IsLoopback() {
		t.Errorf("publisher listener defaults to %q, want loopback", cfg.API.Addr)
	}
	if len(cfg.Client.AllowedOrigins) != 0 {
		t.Errorf("client allowed_origins defaults to %v, want same host only", cfg.Client.AllowedOrigins)
	}
	if cfg.Demo.Enabled {
		t.Error("the demo routes (tokens for anyone) are on by default")
	}
}

// TestSecretsStayOut runs the gateway with known secrets, exercises the
// API (good and bad requests, a provider that fails, the config and
// metrics endpoints), and then searches every answer and the whole log
// for the secrets.
func TestSecretsStayOut(t *testing.T) {
	e := newRelEnv(t, "")
	sa, err := os.ReadFile(e.dir + "/sa.json")
	if err != nil {
		t.Fatal(err)
	}
	var acct struct {
		PrivateKey string `json:"private_key"`
	}
	if err := json.Unmarshal(sa, &acct); err != nil {
		t.Fatal(err)
	}
	p := e.start(t, nil, "PUSHPULL_LOG_LEVEL=debug")
	api := newRelAPI(p.api)
	ctx := context.Background()
	var answers bytes.Buffer
	call := func(method, path, body string) {
		_, raw, err := api.do(ctx, method, path, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		answers.Write(raw)
	}
	deviceToken := "secret-device-token-0123456789:APA91b"
	call("POST", "/api/v1/devices", `{"user":"42","device_id":"d1","platform":"fcm","token":"`+deviceToken+`","app_id":"`+relFCMApp+`"}`)
	call("POST", "/api/v1/push", `{"notifications":[{"users":["42"],"title":"t"}]}`)
	call("POST", "/api/v1/push", `{"notifications":[{"users":["42"],"title":"t","apns":{"headers":{"authorization":"bearer x"}}}]}`)
	var tok struct {
		Token string `json:"token"`
	}
	if _, raw, err := api.do(ctx, "POST", "/api/v1/tokens", []byte(`{"user":"42"}`)); err != nil || json.Unmarshal(raw, &tok) != nil {
		t.Fatalf("token: %s %v", raw, err)
	}
	call("GET", "/api/v1/config?user=42", "")
	call("GET", "/metrics", "")
	call("GET", "/api/v1/users/42/devices", "")
	waitFor(t, 20*time.Second, "the push delivered", func() bool { return deliveredFCM(e.fcm)[deviceToken] > 0 })
	// A wrong key and a bad client token are refused; the refusals and
	// logs must not echo what was presented.
	req, _ := http.NewRequest("GET", "http://"+p.api+"/api/v1/queue", nil)
	req.Header.Set("Authorization", "Bearer "+relKey+"-wrong")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
	if res, err := http.Get("http://" + p.client + "/sub/poll?wait=0&token=" + tok.Token + "x"); err == nil {
		res.Body.Close()
	}
	// The unregistered token makes the provider fail, which is logged.
	e.fcm.Script(deviceToken, fakeUnregistered())
	call("POST", "/api/v1/push", `{"notifications":[{"users":["42"],"title":"again"}]}`)
	waitFor(t, 20*time.Second, "the dead token removed", func() bool {
		_, raw, _ := api.do(ctx, "GET", "/api/v1/users/42/devices", nil)
		return !bytes.Contains(raw, []byte("d1"))
	})

	logs := p.log()
	secrets := map[string]string{
		"API key": relKey, "JWT secret": relSecret, "client token": tok.Token,
		"service account key": strings.Split(strings.TrimSpace(acct.PrivateKey), "\n")[1],
		"device token":        deviceToken,
	}
	for name, s := range secrets {
		if s == "" {
			t.Fatalf("no %s to look for", name)
		}
		if strings.Contains(logs, s) {
			t.Errorf("the log contains the %s", name)
		}
		if name != "client token" && name != "device token" && bytes.Contains(answers.Bytes(), []byte(s)) {
			t.Errorf("an API answer contains the %s", name)
		}
	}
	figure(t, "security/secrets log_lines=%d answers_bytes=%d secrets_found=0", strings.Count(logs, "\n"), answers.Len())
}

func TestWebSocketForeignOriginRefused(t *testing.T) {
	e := newRelEnv(t, "")
	p := e.start(t, nil)
	h := http.Header{}
	h.Set("Origin", "https://evil.example")
	_, res, err := websocket.Dial(context.Background(), "ws://"+p.client+"/sub/ws?token="+clientToken(t, "42"), &websocket.DialOptions{HTTPHeader: h})
	if err == nil || res == nil || res.StatusCode != http.StatusForbidden {
		t.Fatalf("foreign origin: %v %v", res, err)
	}
	// Same host (no Origin, as a native app) is accepted.
	c, _, err := websocket.Dial(context.Background(), "ws://"+p.client+"/sub/ws?token="+clientToken(t, "42"), nil)
	if err != nil {
		t.Fatal(err)
	}
	c.CloseNow()
}

// TestLiveHistoryLostOnRestartIsAnnounced: history is in memory; after a
// restart a client resuming from an old id learns that it may have
// missed events (resumed:false or a resync frame) instead of silently
// getting a gap.
func TestLiveHistoryLostOnRestartIsAnnounced(t *testing.T) {
	e := newRelEnv(t, "")
	p := e.start(t, nil)
	api := newRelAPI(p.api)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, _ := dialLoad(ctx, t, p.client, "42", "", 1)
	if status, raw, err := api.do(ctx, "POST", "/api/v1/events", []byte(`{"events":[{"users":["42"],"module_id":"m","command":"c"}]}`)); err != nil || status != 202 {
		t.Fatalf("publish: %d %s %v", status, raw, err)
	}
	_, msg, err := c.conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	id := string(field(msg, `"id":"`, '"'))
	c.conn.CloseNow()
	p.kill()

	p = e.start(t, nil)
	u := "ws://" + p.client + "/sub/ws?token=" + clientToken(t, "42") + "&since=" + id
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.CloseNow()
	_, msg, err = conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(msg, []byte(`"resumed":false`)) && !bytes.Contains(msg, []byte(`"resync"`)) {
		t.Fatalf("resume across a restart: %s", msg)
	}
	figure(t, "restart/history-lost announced=yes first_frame=%q", bytes.SplitN(msg, []byte("\n"), 2)[0])
}
