package hms_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/hms"
)

// clock is a settable test clock shared by the fake and the provider.
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

type env struct {
	fake *fake.HMS
	p    *hms.Provider
	clk  *clock
}

func start(t *testing.T, mutate func(*hms.Options)) *env {
	t.Helper()
	clk := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	f, err := fake.NewHMS(fake.HMSOptions{TLS: true, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	f.AddClient("108000001", "s3cret", "108000001")
	opts := hms.Options{
		Apps:       []hms.App{{ID: "com.example.app", ClientID: "108000001", ClientSecret: "s3cret"}},
		Endpoint:   f.URL(),
		TokenURL:   f.TokenURL(),
		HTTPClient: f.Client(),
		Timeout:    5 * time.Second,
		Now:        clk.Now,
	}
	if mutate != nil {
		mutate(&opts)
	}
	p, err := hms.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return &env{fake: f, p: p, clk: clk}
}

func msg(token string, n *providers.Notification) providers.Message {
	return providers.Message{Target: providers.Target{ID: "job-" + token, Platform: hms.Platform,
		AppID: "com.example.app", Token: token}, Notification: n}
}

func TestSendSuccessMapsNotification(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	badge := 3
	n := &providers.Notification{Title: "Anna", Body: "Hello", Badge: &badge, Sound: "default",
		Data:      json.RawMessage(`{"params":"{\"chat\":7}", "id":"IM_MESS_7"}`),
		ExpiresAt: e.clk.Now().Add(2 * time.Hour)}
	res := e.p.Send(context.Background(), []providers.Message{msg("tokA", n)})
	if res[0].Class != providers.Delivered || res[0].ProviderID == "" || res[0].Reason != hms.CodeSuccess {
		t.Fatalf("result = %+v", res[0])
	}
	got := e.fake.Received()
	if len(got) != 1 {
		t.Fatalf("%d requests", len(got))
	}
	m := got[0].Message
	if got[0].AppID != "108000001" || len(got[0].Tokens) != 1 || got[0].Tokens[0] != "tokA" {
		t.Fatalf("request = %+v", got[0])
	}
	if m["data"] != `{"params":"{\"chat\":7}","id":"IM_MESS_7"}` {
		t.Errorf("data = %q", m["data"])
	}
	a := m["android"].(map[string]any)
	if a["ttl"] != "7200s" {
		t.Errorf("ttl = %v", a["ttl"])
	}
	if _, ok := a["urgency"]; ok {
		t.Errorf("urgency set without HighUrgency: %v", a["urgency"])
	}
	an := a["notification"].(map[string]any)
	if an["title"] != "Anna" || an["body"] != "Hello" || an["default_sound"] != true {
		t.Errorf("notification = %v", an)
	}
	if ca := an["click_action"].(map[string]any); ca["type"] != float64(3) {
		t.Errorf("click_action = %v", ca)
	}
	if _, ok := an["badge"]; ok {
		t.Errorf("badge sent without BadgeClass: %v", an["badge"])
	}
}

func TestTokenCachedAndRefreshedOnExpiry(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	n := &providers.Notification{Body: "x"}
	for range 3 {
		if r := e.p.Send(context.Background(), []providers.Message{msg("t1", n)}); r[0].Class != providers.Delivered {
			t.Fatalf("result = %+v", r[0])
		}
	}
	if got := e.fake.TokensIssued(); got != 1 {
		t.Fatalf("tokens issued = %d, want 1 (cached)", got)
	}
	// HMS forgets the token (as after expiry on its side): the provider
	// must fetch a new one and repeat the send once.
	e.fake.RevokeTokens()
	if r := e.p.Send(context.Background(), []providers.Message{msg("t1", n)}); r[0].Class != providers.Delivered {
		t.Fatalf("after revoke: %+v", r[0])
	}
	if got := e.fake.TokensIssued(); got != 2 {
		t.Fatalf("tokens issued = %d, want 2", got)
	}
	rq := e.fake.Received()
	if rq[3].Code != fake.HMSTokenExpired || rq[4].Code != fake.HMSSuccess {
		t.Fatalf("codes = %s, %s", rq[3].Code, rq[4].Code)
	}
	// The clock passes the token's life: a new one is fetched before use.
	e.clk.Add(time.Hour)
	if r := e.p.Send(context.Background(), []providers.Message{msg("t1", n)}); r[0].Class != providers.Delivered {
		t.Fatalf("after expiry: %+v", r[0])
	}
	if got := e.fake.TokensIssued(); got != 3 {
		t.Fatalf("tokens issued = %d, want 3", got)
	}
}

func TestAuthFailureRejects(t *testing.T) {
	t.Parallel()
	e := start(t, func(o *hms.Options) { o.Apps[0].ClientSecret = "wrong" })
	r := e.p.Send(context.Background(), []providers.Message{msg("t1", &providers.Notification{Body: "x"})})
	if r[0].Class != providers.Rejected || r[0].Reason != hms.ReasonOAuthRefused || !errors.Is(r[0].Err, hms.ErrCredentials) {
		t.Fatalf("result = %+v", r[0])
	}
	if e.fake.Requests() != 0 {
		t.Fatal("sent without a token")
	}
}

func TestPersistentAuthErrorRejectsAfterOneRefresh(t *testing.T) {
	t.Parallel()
	// Credentials valid but for another app id in the URL: every send is
	// 401 80200001 even with a fresh token.
	e := start(t, func(o *hms.Options) { o.Apps[0].HMSAppID = "999" })
	r := e.p.Send(context.Background(), []providers.Message{msg("t1", &providers.Notification{Body: "x"})})
	if r[0].Class != providers.Rejected || r[0].Reason != fake.HMSOAuthError || r[0].Status != 401 {
		t.Fatalf("result = %+v", r[0])
	}
	if e.fake.Requests() != 2 || e.fake.TokensIssued() != 2 {
		t.Fatalf("requests %d, tokens %d; want 2 and 2", e.fake.Requests(), e.fake.TokensIssued())
	}
}

func TestClassification(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		b          fake.HMSBehavior
		class      providers.Class
		reason     string
		retryAfter time.Duration
	}{
		{"invalid token", fake.HMSBehavior{Code: fake.HMSAllTokensInvalid}, providers.TokenInvalid, "80300007", 0},
		{"flow control", fake.HMSBehavior{Status: 503, RetryAfter: 7 * time.Second}, providers.Retry, "81000001", 7 * time.Second},
		{"rate limit 429", fake.HMSBehavior{Status: 429, Code: "80000001"}, providers.Retry, "80000001", 0},
		{"system error", fake.HMSBehavior{Code: fake.HMSInternalError}, providers.Retry, "81000001", 0},
		{"bad gateway", fake.HMSBehavior{Status: 502}, providers.Retry, "81000001", 0},
		{"no permission", fake.HMSBehavior{Code: fake.HMSNoPermission}, providers.Rejected, "80300002", 0},
		{"too large", fake.HMSBehavior{Code: fake.HMSMessageTooLarge}, providers.Rejected, "80300008", 0},
		{"urgency right", fake.HMSBehavior{Code: fake.HMSNoHighUrgencyRight}, providers.Rejected, "80300011", 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e := start(t, nil)
			e.fake.Script("tok", c.b)
			r := e.p.Send(context.Background(), []providers.Message{msg("tok", &providers.Notification{Body: "x"})})[0]
			if r.Class != c.class || r.Reason != c.reason || r.RetryAfter != c.retryAfter || r.Err == nil {
				t.Fatalf("result = %+v", r)
			}
		})
	}
}

func TestGroupedSendSplitsPartialAnswer(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	e.fake.Script("dead", fake.HMSBehavior{Code: fake.HMSAllTokensInvalid})
	n := &providers.Notification{Body: "x"}
	batch := []providers.Message{msg("a", n), msg("dead", n), msg("b", n), msg("a", n)}
	res := e.p.Send(context.Background(), batch)
	want := []providers.Class{providers.Delivered, providers.TokenInvalid, providers.Delivered, providers.Delivered}
	for i, r := range res {
		if r.Class != want[i] {
			t.Errorf("result %d = %+v, want %v", i, r, want[i])
		}
	}
	if res[1].Reason != fake.HMSPartialSuccess {
		t.Errorf("reason = %q", res[1].Reason)
	}
	// One request for a, dead, b; the repeated "a" goes in a second one.
	// The two requests run concurrently: compare sizes in either order.
	rq := e.fake.Received()
	if len(rq) != 2 || len(rq[0].Tokens)+len(rq[1].Tokens) != 4 || min(len(rq[0].Tokens), len(rq[1].Tokens)) != 1 {
		t.Fatalf("requests = %+v", rq)
	}
}

func TestMaxTokensPerRequest(t *testing.T) {
	t.Parallel()
	e := start(t, func(o *hms.Options) { o.MaxTokensPerRequest = 2 })
	n := &providers.Notification{Body: "x"}
	res := e.p.Send(context.Background(), []providers.Message{msg("a", n), msg("b", n), msg("c", n)})
	for i, r := range res {
		if r.Class != providers.Delivered {
			t.Fatalf("result %d = %+v", i, r)
		}
	}
	if e.fake.Requests() != 2 || e.fake.Delivered() != 3 {
		t.Fatalf("requests %d delivered %d", e.fake.Requests(), e.fake.Delivered())
	}
}

func TestLocalRejectionsAndTimeout(t *testing.T) {
	t.Parallel()
	e := start(t, func(o *hms.Options) { o.Timeout = 100 * time.Millisecond })
	e.fake.Script("slow", fake.HMSBehavior{Delay: 5 * time.Second})
	other := msg("x", &providers.Notification{Body: "x"})
	other.Target.AppID = "nope"
	res := e.p.Send(context.Background(), []providers.Message{
		msg("v", &providers.Notification{Body: "x", PushType: providers.PushVoIP}),
		other,
		msg("slow", &providers.Notification{Body: "x"}),
		msg("big", &providers.Notification{Body: strings.Repeat("é", 3000)}),
	})
	if res[0].Class != providers.Rejected || !errors.Is(res[0].Err, hms.ErrInvalidMessage) {
		t.Errorf("voip: %+v", res[0])
	}
	if res[1].Class != providers.Rejected || res[1].Reason != hms.ReasonNoApp {
		t.Errorf("unknown app: %+v", res[1])
	}
	if res[2].Class != providers.Retry || res[2].Reason != hms.ReasonTimeout {
		t.Errorf("slow: %+v", res[2])
	}
	if res[3].Class != providers.Rejected || res[3].Reason != hms.ReasonTooLarge {
		t.Errorf("big: %+v", res[3])
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if r := e.p.Send(ctx, []providers.Message{msg("a", &providers.Notification{Body: "x"})}); r[0].Class != providers.Retry {
		t.Errorf("cancelled: %+v", r[0])
	}
	_ = e.p.Close()
	_ = e.p.Close()
	if r := e.p.Send(context.Background(), []providers.Message{msg("a", &providers.Notification{Body: "x"})}); r[0].Reason != hms.ReasonClosed {
		t.Errorf("closed: %+v", r[0])
	}
}

func TestNetworkErrorRetries(t *testing.T) {
	t.Parallel()
	e := start(t, nil)
	e.fake.Close()
	r := e.p.Send(context.Background(), []providers.Message{msg("a", &providers.Notification{Body: "x"})})[0]
	if r.Class != providers.Retry || r.Reason != hms.ReasonOAuthUnavailable {
		t.Fatalf("result = %+v", r)
	}
}

func TestSecretFileAndValidate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "secret")
	if err := os.WriteFile(path, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	e := start(t, func(o *hms.Options) { o.Apps[0].ClientSecret, o.Apps[0].ClientSecretFile = "", path })
	if r := e.p.Send(context.Background(), []providers.Message{msg("a", &providers.Notification{Body: "x"})}); r[0].Class != providers.Delivered {
		t.Fatalf("secret from file: %+v", r[0])
	}
	if !e.p.HasApp("com.example.app") || e.p.HasApp("x") || e.p.Platform() != "hms" {
		t.Fatal("HasApp/Platform")
	}

	good := hms.App{ID: "a", ClientID: "1", ClientSecret: "s"}
	bad := []struct {
		field string
		o     hms.Options
	}{
		{"Apps:", hms.Options{}},
		{"Apps[0].ID", hms.Options{Apps: []hms.App{{ClientID: "1", ClientSecret: "s"}}}},
		{"Apps[1].ID", hms.Options{Apps: []hms.App{good, good}}},
		{"Apps[0].ClientID", hms.Options{Apps: []hms.App{{ID: "a", ClientSecret: "s"}}}},
		{"Apps[0].ClientSecret", hms.Options{Apps: []hms.App{{ID: "a", ClientID: "1"}}}},
		{"Apps[0].ClientSecret", hms.Options{Apps: []hms.App{{ID: "a", ClientID: "1", ClientSecret: "s", ClientSecretFile: "f"}}}},
		{"Endpoint", hms.Options{Apps: []hms.App{good}, Endpoint: "push-api"}},
		{"TokenURL", hms.Options{Apps: []hms.App{good}, TokenURL: "ftp://x"}},
		{"Concurrency", hms.Options{Apps: []hms.App{good}, Concurrency: -1}},
		{"Timeout", hms.Options{Apps: []hms.App{good}, Timeout: -1}},
		{"MaxTokensPerRequest", hms.Options{Apps: []hms.App{good}, MaxTokensPerRequest: 1001}},
	}
	for _, c := range bad {
		err := c.o.Validate()
		if !errors.Is(err, hms.ErrInvalidOptions) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("Validate() = %v, want an error naming %s", err, c.field)
		}
	}
	if err := (hms.Options{Apps: []hms.App{good}}).Validate(); err != nil {
		t.Errorf("valid options: %v", err)
	}
}
