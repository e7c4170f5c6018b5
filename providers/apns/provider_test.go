package apns

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

const (
	keyID  = "KEY1234567"
	teamID = "TEAM123456"
	appID  = "Bitrix24"
	topic  = "com.example.app"
)

// tok makes a distinct 64-hex device token.
func tok(i int) string { return fmt.Sprintf("%064x", i+1) }

type env struct {
	prod, sandbox *fake.APNs
	p             *Provider
	opts          Options
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newEnv starts a production and a sandbox fake that both trust one
// provider key, and a Provider (token auth) pointed at them.
func newEnv(t testing.TB, fopts fake.APNsOptions, mod func(*Options)) *env {
	t.Helper()
	prod, err := fake.NewAPNs(fopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(prod.Close)
	sandbox, err := fake.NewAPNs(fopts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sandbox.Close)
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	prod.AddKey(keyID, teamID, pub)
	sandbox.AddKey(keyID, teamID, pub)
	pool := x509.NewCertPool()
	pool.AddCert(prod.Certificate())
	pool.AddCert(sandbox.Certificate())
	o := Options{
		Apps:          []App{{ID: appID, Topic: topic, Key: keyPEM, KeyID: keyID, TeamID: teamID}},
		ProductionURL: prod.URL(),
		SandboxURL:    sandbox.URL(),
		RootCAs:       pool,
		Timeout:       5 * time.Second,
		Logger:        discard(),
	}
	if mod != nil {
		mod(&o)
	}
	p, err := New(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &env{prod: prod, sandbox: sandbox, p: p, opts: o}
}

func msg(token string, n *providers.Notification) providers.Message {
	return providers.Message{
		Target:       providers.Target{ID: "job-" + token[len(token)-4:], Platform: providers.PlatformAPNs, AppID: appID, Token: token},
		Notification: n,
	}
}

func (e *env) send1(t testing.TB, m providers.Message) providers.Result {
	t.Helper()
	res := e.p.Send(context.Background(), []providers.Message{m})
	if len(res) != 1 {
		t.Fatalf("%d results for 1 message", len(res))
	}
	return res[0]
}

func decodePayload(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("payload %s: %v", raw, err)
	}
	return m
}

func TestSendMapsEveryField(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	badge := 3
	exp := time.Unix(1900000000, 0)
	n := &providers.Notification{
		Title: "Anna", Subtitle: "Chat", Body: "Hi <there> & you", Badge: &badge, Sound: "ping.caf",
		Category: "MSG", ThreadID: "chat-42", Data: json.RawMessage(`{"chat_id":42,"big":12345678901234567890}`),
		ContentAvailable: true, MutableContent: true, Priority: providers.PriorityNormal,
		CollapseID: "chat-42", ExpiresAt: exp,
	}
	r := e.send1(t, msg(tok(0), n))
	if r.Class != providers.Delivered || r.Status != 200 || r.ProviderID == "" || r.Err != nil {
		t.Fatalf("result %+v", r)
	}
	got := e.prod.Received()
	if len(got) != 1 || len(e.sandbox.Received()) != 0 {
		t.Fatalf("prod got %d, sandbox got %d", len(got), len(e.sandbox.Received()))
	}
	req := got[0]
	if req.APNsID != r.ProviderID {
		t.Errorf("ProviderID %q, fake answered %q", r.ProviderID, req.APNsID)
	}
	checks := map[string][2]string{
		"token":      {req.Token, tok(0)},
		"topic":      {req.Topic, topic},
		"push type":  {req.PushType, "alert"},
		"priority":   {req.Priority, "5"},
		"collapse":   {req.CollapseID, "chat-42"},
		"expiration": {req.Expiration, strconv.FormatInt(exp.Unix(), 10)},
		"key id":     {req.KeyID, keyID},
	}
	for name, c := range checks {
		if c[0] != c[1] {
			t.Errorf("%s = %q, want %q", name, c[0], c[1])
		}
	}
	want := `{"aps":{"alert":{"body":"Hi \u003cthere\u003e \u0026 you","subtitle":"Chat","title":"Anna"},` +
		`"badge":3,"category":"MSG","content-available":1,"mutable-content":1,"sound":"ping.caf","thread-id":"chat-42"},` +
		`"big":12345678901234567890,"chat_id":42}`
	if string(req.Payload) != want {
		t.Errorf("payload\n got %s\nwant %s", req.Payload, want)
	}
}

func TestPushTypes(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, func(o *Options) {
		o.Apps = append(o.Apps, App{ID: "other", Topic: "com.example.other", VoIPTopic: "com.example.calls",
			Key: o.Apps[0].Key, KeyID: keyID, TeamID: teamID})
	})
	cases := []struct {
		app                      string
		n                        providers.Notification
		topic, pushType, prio    string
		contentAvailable, hasAlt bool
	}{
		{appID, providers.Notification{Body: "b"}, topic, "alert", "10", false, true},
		{appID, providers.Notification{PushType: providers.PushVoIP, Data: json.RawMessage(`{"call":1}`)}, topic + ".voip", "voip", "10", false, false},
		{"other", providers.Notification{PushType: providers.PushVoIP}, "com.example.calls", "voip", "10", false, false},
		{appID, providers.Notification{PushType: providers.PushBackground, Priority: providers.PriorityHigh}, topic, "background", "5", true, false},
	}
	for i, c := range cases {
		m := msg(tok(i), &c.n)
		m.Target.AppID = c.app
		if r := e.send1(t, m); r.Class != providers.Delivered {
			t.Fatalf("case %d: %+v", i, r)
		}
		req := e.prod.Received()[i]
		if req.Topic != c.topic || req.PushType != c.pushType || req.Priority != c.prio {
			t.Errorf("case %d: topic %q type %q priority %q, want %q %q %q", i, req.Topic, req.PushType, req.Priority, c.topic, c.pushType, c.prio)
		}
		aps := decodePayload(t, req.Payload)["aps"].(map[string]any)
		if _, ok := aps["content-available"]; ok != c.contentAvailable {
			t.Errorf("case %d: content-available present=%v, want %v", i, ok, c.contentAvailable)
		}
		if _, ok := aps["alert"]; ok != c.hasAlt {
			t.Errorf("case %d: alert present=%v", i, ok)
		}
	}
}

func TestSandboxRouting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	n := &providers.Notification{Body: "x"}
	prod, sand := msg(tok(1), n), msg(tok(2), n)
	sand.Target.Sandbox = true
	res := e.p.Send(context.Background(), []providers.Message{prod, sand, prod})
	for i, r := range res {
		if r.Class != providers.Delivered {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	p, s := e.prod.Received(), e.sandbox.Received()
	if len(p) != 2 || len(s) != 1 || s[0].Token != tok(2) || p[0].Token != tok(1) {
		t.Fatalf("production got %d, sandbox got %d (%+v)", len(p), len(s), s)
	}
}

func TestBatchResultsInOrder(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, func(o *Options) { o.Concurrency = 64 })
	const n = 1000
	batch := make([]providers.Message, n)
	shared := &providers.Notification{Title: "t", Body: "b"}
	for i := range batch {
		batch[i] = msg(tok(i), shared)
		switch {
		case i%7 == 3:
			e.prod.Script(tok(i), fake.Behavior{Status: 410, Reason: fake.APNsUnregistered})
		case i%11 == 5:
			e.prod.Script(tok(i), fake.Behavior{Status: 429, Reason: fake.APNsTooManyRequests})
		}
	}
	res := e.p.Send(context.Background(), batch)
	if len(res) != n {
		t.Fatalf("%d results", len(res))
	}
	ids := make(map[string]bool, n)
	for i, r := range res {
		want := providers.Delivered
		switch {
		case i%7 == 3:
			want = providers.TokenInvalid
		case i%11 == 5:
			want = providers.Retry
		}
		if r.Class != want {
			t.Fatalf("result %d: %v (%s), want %v", i, r.Class, r.Reason, want)
		}
		if want == providers.Delivered {
			if ids[r.ProviderID] {
				t.Fatalf("result %d: apns-id %q seen twice", i, r.ProviderID)
			}
			ids[r.ProviderID] = true
		}
	}
	if got := e.prod.Requests(); got != n {
		t.Fatalf("fake answered %d requests, want %d", got, n)
	}
}

func TestUnknownAppAndBadToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	n := &providers.Notification{Body: "x"}
	unknown := msg(tok(0), n)
	unknown.Target.AppID = "nope"
	bad := msg(tok(1), n)
	bad.Target.Token = "not/hex?" + tok(1)
	empty := msg(tok(2), n)
	empty.Target.Token = ""
	res := e.p.Send(context.Background(), []providers.Message{unknown, bad, empty, msg(tok(3), nil)})
	if r := res[0]; r.Class != providers.Rejected || r.Reason != "no APNs app configured for nope" || !errors.Is(r.Err, ErrUnknownApp) {
		t.Errorf("unknown app: %+v", r)
	}
	for _, r := range res[1:3] {
		if r.Class != providers.TokenInvalid || !errors.Is(r.Err, ErrBadDeviceToken) {
			t.Errorf("malformed token: %+v", r)
		}
	}
	if r := res[3]; r.Class != providers.Rejected || !errors.Is(r.Err, ErrInvalidNotification) {
		t.Errorf("nil notification: %+v", r)
	}
	if got := e.prod.Requests(); got != 0 {
		t.Errorf("fake received %d requests, want none", got)
	}
	if !e.p.HasApp(appID) || e.p.HasApp("nope") || e.p.Platform() != providers.PlatformAPNs {
		t.Error("HasApp/Platform")
	}
}

func TestCancelledContextAndClose(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := &providers.Notification{Body: "x"}
	for _, r := range e.p.Send(ctx, []providers.Message{msg(tok(0), n), msg(tok(1), n)}) {
		if r.Class != providers.Retry || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("cancelled: %+v", r)
		}
	}
	if err := e.p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.p.Close(); err != nil {
		t.Fatal(err)
	}
	if r := e.send1(t, msg(tok(2), n)); r.Class != providers.Retry || !errors.Is(r.Err, ErrClosed) {
		t.Errorf("after Close: %+v", r)
	}
	if got := e.prod.Requests(); got != 0 {
		t.Errorf("fake received %d requests", got)
	}
}

// A sink that fails the test if anything logs a full device token.
type tokenLeakHandler struct {
	slog.Handler
	t      *testing.T
	secret string
}

func (h tokenLeakHandler) Handle(ctx context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if s := a.Value.String(); len(s) >= len(h.secret) && contains(s, h.secret) {
			h.t.Errorf("log attr %s leaks the token: %s", a.Key, s)
		}
		return true
	})
	return nil
}

func contains(s, sub string) bool {
	for i := 0; i+len(sub) <= len(s); i++ {
		if s[i:i+len(sub)] == sub {
			return true
		}
	}
	return false
}

func TestLogsRedactTokens(t *testing.T) {
	t.Parallel()
	h := tokenLeakHandler{Handler: slog.NewTextHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelDebug}), t: t, secret: tok(0)}
	e := newEnv(t, fake.APNsOptions{}, func(o *Options) { o.Logger = slog.New(h) })
	e.prod.Script(tok(0), fake.Behavior{Status: 400, Reason: fake.APNsBadTopic})
	if r := e.send1(t, msg(tok(0), &providers.Notification{Body: "x"})); r.Class != providers.Rejected {
		t.Fatalf("%+v", r)
	}
}
