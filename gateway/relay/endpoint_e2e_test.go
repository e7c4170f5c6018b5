package relay_test

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/gateway/relay"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
	"github.com/pushpull/pushpull/providers/hms"
	"github.com/pushpull/pushpull/queue"
	webrelay "github.com/pushpull/pushpull/web/relay"
)

// The end-to-end tests build batches exactly as the pull module does
// (phpbuild_test.go), POST them to the relay endpoint over HTTP, and read
// what the real apns2, firebase and HMS clients delivered to the
// protocol-true fakes.

const (
	e2eSecret  = "s3cret-path-segment-0123"
	e2eLicense = "LICENSE-KEY-1"
	apnsTopic  = "com.example.chat"
	keyID      = "KEYID12345"
	teamID     = "TEAMID1234"
)

// providerFakes are the three fakes and the provider clients speaking to
// them; they outlive a gateway restart.
type providerFakes struct {
	prod, sandbox *fake.APNs
	fcm           *fake.FCM
	hms           *fake.HMS
	provs         []providers.Provider
}

func newProviderFakes(t *testing.T) *providerFakes {
	t.Helper()
	pf := &providerFakes{}
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	for _, p := range []**fake.APNs{&pf.prod, &pf.sandbox} {
		f, err := fake.NewAPNs(fake.APNsOptions{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(f.Close)
		f.AddKey(keyID, teamID, pub)
		pool.AddCert(f.Certificate())
		*p = f
	}
	ap, err := apns.New(apns.Options{
		Apps:          []apns.App{{ID: "ios", Topic: apnsTopic, Key: keyPEM, KeyID: keyID, TeamID: teamID}},
		ProductionURL: pf.prod.URL(), SandboxURL: pf.sandbox.URL(), RootCAs: pool, Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })

	if pf.fcm, err = fake.NewFCM(fake.FCMOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pf.fcm.Close)
	sa, err := pf.fcm.ServiceAccountJSON("chat-project")
	if err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	fp, err := fcm.New(context.Background(), fcm.Options{
		Apps: []fcm.App{{ID: "android", CredentialsFile: saFile}}, Endpoint: pf.fcm.URL() + "/v1", Timeout: 5 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })

	if pf.hms, err = fake.NewHMS(fake.HMSOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pf.hms.Close)
	pf.hms.AddClient("1001", "hms-secret", "1001")
	hp, err := hms.New(hms.Options{Endpoint: pf.hms.URL(), TokenURL: pf.hms.TokenURL(), HTTPClient: pf.hms.Client(),
		Apps: []hms.App{{ID: "huawei", ClientID: "1001", ClientSecret: "hms-secret"}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hp.Close() })
	pf.provs = []providers.Provider{ap, fp, hp}
	return pf
}

// gateway is the part of pushpull the relay needs: the bbolt file, the
// queue, the push service and the relay endpoint on an HTTP server.
type gateway struct {
	db      *bbolt.DB
	q       *queue.Queue
	reg     *devices.Registry
	svc     *push.Service
	remover *relay.Remover
	srv     *httptest.Server
}

type gatewayConfig struct {
	dbPath   string
	apps     []relay.App
	dispatch bool   // start the dispatcher
	portal   string // scheme of the token-remove callback; "" = off
	maxBody  int64
}

func startGateway(t *testing.T, pf *providerFakes, gc gatewayConfig) *gateway {
	t.Helper()
	g := &gateway{}
	var err error
	if g.db, err = bbolt.Open(gc.dbPath, 0o600, nil); err != nil {
		t.Fatal(err)
	}
	if g.q, err = queue.Open(g.db, queue.Options{Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	if g.reg, err = devices.Open(g.db, devices.Options{PurgeInterval: -1, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	po := push.Options{MaxIdle: time.Second}
	if gc.portal != "" {
		if g.remover, err = relay.NewRemover(relay.RemoverOptions{Scheme: gc.portal, Backoff: time.Millisecond}); err != nil {
			t.Fatal(err)
		}
		po.OnInvalidToken = g.remover.OnInvalidToken
	}
	if g.svc, err = push.New(g.q, g.reg, pf.provs, po); err != nil {
		t.Fatal(err)
	}
	if gc.dispatch {
		if err := g.svc.Start(); err != nil {
			t.Fatal(err)
		}
	}
	apps := gc.apps
	if apps == nil {
		apps = []relay.App{{Key: "Bitrix24", APNs: "ios", FCM: "android", HMS: "huawei"}}
	}
	rs, err := relay.NewService(g.svc, relay.ServiceOptions{Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	if err := webrelay.Register(e, rs, webrelay.Options{Secret: e2eSecret,
		Keys: []string{relay.LicenseKeyHash(e2eLicense)}, MaxBody: gc.maxBody}); err != nil {
		t.Fatal(err)
	}
	g.srv = httptest.NewServer(e)
	t.Cleanup(g.close)
	return g
}

// close stops the gateway like a restart would; it may be called twice.
func (g *gateway) close() {
	if g.db == nil {
		return
	}
	g.srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	g.svc.Stop(ctx)
	if g.remover != nil {
		g.remover.Close(ctx)
	}
	g.q.Close()
	g.reg.Close()
	g.db.Close()
	g.db = nil
}

// post sends a form body as the portal does and returns status, headers
// and body.
func (g *gateway) post(t *testing.T, secret, key, form string) (int, http.Header, string) {
	t.Helper()
	u := g.srv.URL + "/bitrix-relay/" + secret + "/?key=" + url.QueryEscape(key)
	resp, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

func (g *gateway) send(t *testing.T, batch string) http.Header {
	t.Helper()
	status, h, body := g.post(t, e2eSecret, relay.LicenseKeyHash(e2eLicense), relay.PHPFormBody(batch))
	if status != http.StatusOK || !strings.Contains(body, "xml version=") {
		t.Fatalf("relay answered %d %s", status, body)
	}
	return h
}

func waitN(t *testing.T, what string, want int64, got func() int64) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for got() < want {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d", what, got(), want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func chat(user int, text string) relay.PHPMsg {
	zero := 0
	return relay.PHPMsg{UserID: user, Title: "Anna <Admin>", Message: text, Badge: 3, Category: "IM_MESS",
		Expiry: &zero, Params: relay.PHPKV("CHAT_ID", 17, "path", "/online/?IM_DIALOG=1"),
		AdvancedParams: relay.PHPKV("id", "IM_MESS_1", "senderName", "Anna", "senderMessage", text,
			"avatarUrl", "https://p.tld/a.png")}
}

func hexToken(n int) string {
	return strconv.FormatInt(int64(0xabc000+n), 16) + strings.Repeat("0", 64-len(strconv.FormatInt(int64(0xabc000+n), 16)))
}

func jsonObj(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%v: %s", err, raw)
	}
	return m
}

// TestRelayEndpoint24 sends one 24.500 batch with every mode through the
// endpoint and checks each provider got its push, converted field by field.
func TestRelayEndpoint24(t *testing.T) {
	t.Parallel()
	pf := newProviderFakes(t)
	g := startGateway(t, pf, gatewayConfig{dbPath: filepath.Join(t.TempDir(), "pp.db"), dispatch: true})
	now := time.Now().Unix()
	sixty := 60
	m1 := relay.NewPHPMessage(hexToken(1), 77, chat(5, "Hi & bye"), false)
	m2 := relay.NewPHPMessage(hexToken(2), 78, chat(5, "Hi & bye"), false)
	expiring := relay.NewPHPMessage(hexToken(3), 79, relay.PHPMsg{UserID: 6, Message: "Soon", Badge: -1, Expiry: &sixty}, false)
	sandbox := relay.NewPHPMessage(hexToken(4), 80, relay.PHPMsg{UserID: 5, Badge: 0, Params: "raw-params"}, false)
	voip := relay.NewPHPMessage(hexToken(5), 81, relay.PHPMsg{UserID: 5, Message: "Call", Badge: 1,
		AdvancedParams: relay.PHPKV("isVoip", true, "senderName", "Bob")}, false)
	fcmMsg := relay.NewPHPMessage("fcm-token-1", 1, relay.PHPMsg{UserID: 5, Message: "Привет", Badge: 2, Params: relay.PHPKV("a", "b")}, false)
	google := relay.NewPHPMessage("gcm-token-1", 1, chat(5, "legacy"), false)
	hw := relay.NewPHPMessage("hw-token-1", 1, chat(5, "huawei"), false)
	batch := relay.PHPBatch24(2, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24",
		m1.AppleFrame(now, false), m2.AppleFrame(now, false), expiring.AppleFrame(now, false))}) +
		relay.PHPBatch24(1, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", sandbox.AppleFrame(now, false))}) +
		relay.PHPBatch24(5, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", voip.AppleFrame(now, true))}) +
		relay.PHPBatch24(7, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", fcmMsg.FCMFrame())}) +
		relay.PHPBatch24(3, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", google.GoogleFrame())}) +
		relay.PHPBatch24(6, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", hw.HuaweiFrame())})

	start := time.Now()
	h := g.send(t, batch)
	t.Logf("relay answered in %v", time.Since(start))
	if h.Get("X-Pushpull-Jobs") != "8" || h.Get("X-Pushpull-Skipped") != "0" {
		t.Fatalf("jobs %s skipped %s", h.Get("X-Pushpull-Jobs"), h.Get("X-Pushpull-Skipped"))
	}
	waitN(t, "APNs production", 4, pf.prod.Delivered)
	waitN(t, "APNs sandbox", 1, pf.sandbox.Delivered)
	waitN(t, "FCM", 2, pf.fcm.Delivered)
	waitN(t, "HMS", 1, pf.hms.Delivered)

	byToken := map[string]fake.APNsRequest{}
	for _, r := range pf.prod.Received() {
		byToken[r.Token] = r
	}
	r := byToken[hexToken(1)]
	if r.Topic != apnsTopic || r.PushType != "alert" {
		t.Errorf("chat push: topic %q type %q", r.Topic, r.PushType)
	}
	p := jsonObj(t, r.Payload)
	aps := p["aps"].(map[string]any)
	alert, _ := aps["alert"].(map[string]any)
	if alert["title"] != "Anna" || alert["body"] != "Hi & bye" || aps["badge"] != 3.0 || aps["category"] != "IM_MESS" {
		t.Errorf("aps = %v", aps)
	}
	if p["params"] != `{"CHAT_ID":17,"path":"\/online\/?IM_DIALOG=1"}` && p["params"] != `{"CHAT_ID":17,"path":"/online/?IM_DIALOG=1"}` {
		t.Errorf("params = %#v (a JSON string of PARAMS)", p["params"])
	}
	if p["id"] != "IM_MESS_1" || p["avatarUrl"] != "https://p.tld/a.png" || p["target"] == nil {
		t.Errorf("ADVANCED_PARAMS keys: %v", p)
	}
	if _, ok := p["senderName"]; ok {
		t.Errorf("senderName left at top level: %v", p)
	}
	if byToken[hexToken(2)].Payload == nil {
		t.Error("second identical frame not delivered")
	}
	exp, _ := strconv.ParseInt(byToken[hexToken(3)].Expiration, 10, 64)
	if exp < now+55 || exp > now+65 {
		t.Errorf("apns-expiration %d, want about %d", exp, now+60)
	}
	if v := byToken[hexToken(5)]; v.Topic != apnsTopic+".voip" || v.PushType != "voip" {
		t.Errorf("voip: topic %q type %q", v.Topic, v.PushType)
	} else if a := jsonObj(t, v.Payload)["aps"].(map[string]any)["alert"]; a != "Call" {
		t.Errorf("voip alert %#v, want the plain string", a)
	}
	if s := pf.sandbox.Received()[0]; s.Token != hexToken(4) {
		t.Errorf("sandbox got %s", s.Token)
	}

	fcmBy := map[string]fake.FCMRequest{}
	for _, r := range pf.fcm.Received() {
		fcmBy[r.Token] = r
	}
	d, _ := fcmBy["fcm-token-1"].Message["data"].(map[string]any)
	if d["contentText"] != "Привет" || d["badge"] != "2" {
		t.Errorf("FCM v1 data = %v", d)
	}
	if _, ok := fcmBy["fcm-token-1"].Message["notification"]; ok {
		t.Error("FCM v1 frame became a system notification")
	}
	d, _ = fcmBy["gcm-token-1"].Message["data"].(map[string]any)
	if d["contentTitle"] != "Anna <Admin>" || d["badge"] != "3" {
		t.Errorf("Google legacy data = %v", d)
	}
	if mp, _ := d["messageParams"].(string); !strings.Contains(mp, `"senderName":"Anna"`) {
		t.Errorf("messageParams = %q, want the JSON of the custom properties", mp)
	}
	if got := pf.hms.Received()[0]; len(got.Tokens) != 1 || got.Tokens[0] != "hw-token-1" || !strings.Contains(got.Message["data"].(string), `"senderMessage":"huawei"`) {
		t.Errorf("HMS got %+v", got)
	}
}

// TestRelayLegacyLayouts: 23.100 with two apps (the misattribution: only
// app B is mapped, so every frame resolves to it) and 20.5 without h=.
func TestRelayLegacyLayouts(t *testing.T) {
	t.Parallel()
	pf := newProviderFakes(t)
	g := startGateway(t, pf, gatewayConfig{dbPath: filepath.Join(t.TempDir(), "pp.db"), dispatch: true,
		apps: []relay.App{{Key: "B", APNs: "ios"}, {Key: "Bitrix24", FCM: "android"}}})
	now := time.Now().Unix()
	a1 := relay.NewPHPMessage(hexToken(1), 1, chat(1, "to A"), false).AppleFrame(now, false)
	b1 := relay.NewPHPMessage(hexToken(2), 2, chat(2, "to B"), false).AppleFrame(now, false)
	h := g.send(t, relay.PHPBatchLegacy(2, "portal.tld", []relay.PHPAppGroup{
		relay.NewPHPAppGroup("A", a1), relay.NewPHPAppGroup("B", b1)}))
	if h.Get("X-Pushpull-Jobs") != "2" {
		t.Fatalf("23.100 jobs %s skipped %s", h.Get("X-Pushpull-Jobs"), h.Get("X-Pushpull-Skipped"))
	}
	gf := relay.NewPHPMessage("g-token", 1, chat(1, "old"), true).GoogleFrame()
	h = g.send(t, relay.PHPBatchLegacy(3, "", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", gf, "", gf)}))
	if h.Get("X-Pushpull-Jobs") != "2" {
		t.Fatalf("20.5 jobs %s skipped %s", h.Get("X-Pushpull-Jobs"), h.Get("X-Pushpull-Skipped"))
	}
	waitN(t, "APNs", 2, pf.prod.Delivered)
	waitN(t, "FCM", 2, pf.fcm.Delivered)
	d := pf.fcm.Received()[0].Message["data"].(map[string]any)
	if d["sound"] != "default" || d["contentTitle"] != "Anna <Admin>" {
		t.Errorf("20.5 data %v", d)
	}
	// An app key nobody mapped is skipped and counted, not sent.
	h = g.send(t, relay.PHPBatch24(2, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Unknown", a1)}))
	if h.Get("X-Pushpull-Jobs") != "0" || h.Get("X-Pushpull-Skipped") != "1" {
		t.Errorf("unmapped app: jobs %s skipped %s", h.Get("X-Pushpull-Jobs"), h.Get("X-Pushpull-Skipped"))
	}
}

// TestRelayBatchSurvivesRestart: the 200 is given after the commit, so a
// batch accepted by a gateway that stops before sending anything is sent
// by the next one on the same file.
func TestRelayBatchSurvivesRestart(t *testing.T) {
	t.Parallel()
	pf := newProviderFakes(t)
	dbPath := filepath.Join(t.TempDir(), "pp.db")
	g := startGateway(t, pf, gatewayConfig{dbPath: dbPath})
	now := time.Now().Unix()
	var frames []string
	for i := range 50 {
		frames = append(frames, relay.NewPHPMessage(hexToken(i), i+1, chat(i, "msg "+strconv.Itoa(i)), false).AppleFrame(now, false))
	}
	g.send(t, relay.PHPBatch24(2, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", frames...)}))
	g.close()
	if pf.prod.Requests() != 0 {
		t.Fatalf("sent before the restart: %d", pf.prod.Requests())
	}
	startGateway(t, pf, gatewayConfig{dbPath: dbPath, dispatch: true})
	waitN(t, "delivered after restart", 50, pf.prod.Delivered)
	seen := map[string]bool{}
	for _, r := range pf.prod.Received() {
		seen[r.Token] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct tokens delivered, want 50", len(seen))
	}
}

// TestRelayDeadTokenCallback: APNs says Unregistered; the portal named by
// h= is told through its token-remove action.
func TestRelayDeadTokenCallback(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var removed []url.Values
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/bitrix/services/main/ajax.php" || r.URL.Query().Get("action") != "pull.api.token.remove" || r.Method != http.MethodPost {
			http.Error(w, "wrong action", http.StatusNotFound)
			return
		}
		r.ParseForm()
		mu.Lock()
		removed = append(removed, r.PostForm)
		mu.Unlock()
		io.WriteString(w, `{"status":"success"}`)
	}))
	defer portal.Close()
	host := strings.TrimPrefix(portal.URL, "http://")

	pf := newProviderFakes(t)
	dead := hexToken(9)
	pf.prod.Script(dead, fake.Behavior{Status: 410, Reason: "Unregistered"})
	g := startGateway(t, pf, gatewayConfig{dbPath: filepath.Join(t.TempDir(), "pp.db"), dispatch: true, portal: "http"})
	now := time.Now().Unix()
	g.send(t, relay.PHPBatch24(2, host, []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24",
		relay.NewPHPMessage(dead, 1, chat(1, "x"), false).AppleFrame(now, false),
		relay.NewPHPMessage(hexToken(10), 2, chat(1, "x"), false).AppleFrame(now, false))}))
	waitN(t, "token-remove calls", 1, func() int64 { mu.Lock(); defer mu.Unlock(); return int64(len(removed)) })
	mu.Lock()
	defer mu.Unlock()
	if len(removed) != 1 || removed[0].Get("token") != dead {
		t.Errorf("portal was told %v, want token %s", removed, dead)
	}
	// The portal answers before the remover counts the call as sent.
	waitN(t, "remover counts the call", 1, func() int64 { return int64(g.remover.Stats().Sent) })
	if s := g.remover.Stats(); s.Sent != 1 || s.Failed != 0 {
		t.Errorf("remover stats %+v", s)
	}
}

// TestRelayRefusals: wrong secret, wrong key, oversized and malformed
// requests get their XML error and store nothing; broken frames are
// skipped with the rest of the batch kept.
func TestRelayRefusals(t *testing.T) {
	t.Parallel()
	pf := newProviderFakes(t)
	g := startGateway(t, pf, gatewayConfig{dbPath: filepath.Join(t.TempDir(), "pp.db")})
	key := relay.LicenseKeyHash(e2eLicense)
	now := time.Now().Unix()
	good := relay.NewPHPMessage(hexToken(1), 1, chat(1, "ok"), false).AppleFrame(now, false)
	form := relay.PHPFormBody(relay.PHPBatch24(2, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24", good)}))
	huge := "Action=SendMessage&MessageBody=" + strings.Repeat("A", 20<<20)

	for _, c := range []struct {
		name, secret, key, form string
		status                  int
		code                    string
	}{
		{"wrong secret", "s3cret-path-segment-0124", key, form, 404, "NotFound"},
		{"wrong key", e2eSecret, relay.LicenseKeyHash("other"), form, 403, "InvalidClientTokenId"},
		{"no key", e2eSecret, "", form, 403, "InvalidClientTokenId"},
		{"20 MB body", e2eSecret, key, huge, 413, "RequestEntityTooLarge"},
		{"wrong action", e2eSecret, key, strings.Replace(form, "SendMessage", "DeleteQueue", 1), 400, "InvalidAction"},
		{"bad escape", e2eSecret, key, "Action=SendMessage&MessageBody=%zz", 400, "MalformedRequest"},
		{"no body", e2eSecret, key, "Action=SendMessage", 400, "MalformedRequest"},
	} {
		status, _, body := g.post(t, c.secret, c.key, c.form)
		if status != c.status || !strings.Contains(body, "<Code>"+c.code+"</Code>") || !strings.HasPrefix(body, "<?xml") {
			t.Errorf("%s: %d %s", c.name, status, body)
		}
	}
	if st, _ := g.q.Stats(); st.Due+st.Deferred != 0 {
		t.Fatalf("refused requests stored %d jobs", st.Due+st.Deferred)
	}

	truncated := good[:len(good)-8]
	h := g.send(t, ";2;tkey=Bitrix24;h=portal.tld;not*base64;"+truncated+";"+good+";;9;"+good)
	if h.Get("X-Pushpull-Jobs") != "1" || h.Get("X-Pushpull-Skipped") != "3" {
		t.Errorf("mixed batch: jobs %s skipped %s", h.Get("X-Pushpull-Jobs"), h.Get("X-Pushpull-Skipped"))
	}
	if st, _ := g.q.Stats(); st.Due != 1 {
		t.Errorf("queue holds %d due jobs, want 1", st.Due)
	}

	// Two Android frames with the same content: the one whose token the
	// push service refuses is skipped, the other is stored.
	msg := relay.PHPMsg{UserID: 1, Message: "same", Badge: 1}
	h = g.send(t, relay.PHPBatch24(7, "portal.tld", []relay.PHPAppGroup{relay.NewPHPAppGroup("Bitrix24",
		relay.NewPHPMessage("bad token", 1, msg, false).FCMFrame(), relay.NewPHPMessage("good-token", 2, msg, false).FCMFrame())}))
	if h.Get("X-Pushpull-Jobs") != "1" || h.Get("X-Pushpull-Skipped") != "1" {
		t.Errorf("bad token: jobs %s skipped %s", h.Get("X-Pushpull-Jobs"), h.Get("X-Pushpull-Skipped"))
	}
}
