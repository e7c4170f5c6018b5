package fcm_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
)

const project = "pushpull-test"

// t0 is the injected clock of every provider in these tests.
var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func startFake(t testing.TB, opts fake.FCMOptions) *fake.FCM {
	t.Helper()
	f, err := fake.NewFCM(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// oauthProvider builds a provider that authenticates through a
// service-account file whose token_uri is the fake: the production path.
func oauthProvider(t testing.TB, f *fake.FCM, mutate func(*fcm.Options)) *fcm.Provider {
	t.Helper()
	sa, err := f.ServiceAccountJSON(project)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(file, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	o := fcm.Options{
		Apps:     []fcm.App{{ID: "app", CredentialsFile: file}},
		Endpoint: f.URL() + "/v1",
		Now:      func() time.Time { return t0 },
	}
	if mutate != nil {
		mutate(&o)
	}
	return newProvider(t, o)
}

// plainProvider builds an unauthenticated provider for a NoAuth fake.
func plainProvider(t testing.TB, f *fake.FCM, mutate func(*fcm.Options)) *fcm.Provider {
	t.Helper()
	o := fcm.Options{
		Apps:       []fcm.App{{ID: "app", ProjectID: project}},
		Endpoint:   f.URL() + "/v1",
		HTTPClient: &http.Client{},
		Now:        func() time.Time { return t0 },
	}
	if mutate != nil {
		mutate(&o)
	}
	return newProvider(t, o)
}

func newProvider(t testing.TB, o fcm.Options) *fcm.Provider {
	t.Helper()
	p, err := fcm.New(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

func msg(token string, n *providers.Notification) providers.Message {
	return providers.Message{
		Target:       providers.Target{ID: "job-" + token, Platform: providers.PlatformFCM, AppID: "app", Token: token},
		Notification: n,
	}
}

// path walks a decoded JSON object: path(m, "android", "ttl").
func path(t *testing.T, m map[string]any, keys ...string) any {
	t.Helper()
	var cur any = m
	for i, k := range keys {
		obj, ok := cur.(map[string]any)
		if !ok {
			t.Fatalf("%s: not an object", strings.Join(keys[:i], "."))
		}
		cur, ok = obj[k]
		if !ok {
			t.Fatalf("%s: missing in %v", strings.Join(keys[:i+1], "."), obj)
		}
	}
	return cur
}

func eq(t *testing.T, m map[string]any, want any, keys ...string) {
	t.Helper()
	if got := path(t, m, keys...); got != want {
		t.Errorf("%s = %#v, want %#v", strings.Join(keys, "."), got, want)
	}
}

func absent(t *testing.T, m map[string]any, keys ...string) {
	t.Helper()
	parent := m
	if len(keys) > 1 {
		parent, _ = path(t, m, keys[:len(keys)-1]...).(map[string]any)
	}
	if v, ok := parent[keys[len(keys)-1]]; ok {
		t.Errorf("%s present (%v), want absent", strings.Join(keys, "."), v)
	}
}

func onlyRequest(t *testing.T, f *fake.FCM) fake.FCMRequest {
	t.Helper()
	got := f.Received()
	if len(got) != 1 {
		t.Fatalf("fake received %d requests, want 1", len(got))
	}
	return got[0]
}

func TestSendAlertMapsEveryField(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{})
	p := oauthProvider(t, f, nil)
	badge := 3
	n := &providers.Notification{
		Title: "Anna", Subtitle: "chat", Body: "Hi there", Badge: &badge, Sound: "default",
		Category: "IM_MESSAGE", ThreadID: "chat17", MutableContent: true,
		Data:       json.RawMessage(`{"chat":17,"s":"text","o":{"a":[1,2]},"b":true,"nil":null}`),
		Priority:   providers.PriorityNormal,
		CollapseID: "IM_MESS_17",
		ExpiresAt:  t0.Add(time.Hour),
	}
	res := p.Send(context.Background(), []providers.Message{msg("tok-1", n)})
	if len(res) != 1 || res[0].Class != providers.Delivered {
		t.Fatalf("result = %+v, want delivered", res)
	}
	if !strings.HasPrefix(res[0].ProviderID, "projects/"+project+"/messages/") || res[0].Status != 200 {
		t.Errorf("ProviderID %q, Status %d", res[0].ProviderID, res[0].Status)
	}
	r := onlyRequest(t, f)
	if r.Project != project || r.Auth == "" || f.TokensIssued() != 1 {
		t.Errorf("project %q, auth %q, tokens issued %d: want OAuth through the fake", r.Project, r.Auth, f.TokensIssued())
	}
	m := r.Message
	eq(t, m, "tok-1", "token")
	eq(t, m, "Anna", "notification", "title")
	eq(t, m, "Hi there", "notification", "body")
	eq(t, m, "17", "data", "chat")
	eq(t, m, "text", "data", "s")
	eq(t, m, `{"a":[1,2]}`, "data", "o")
	eq(t, m, "true", "data", "b")
	eq(t, m, "null", "data", "nil")
	eq(t, m, "normal", "android", "priority")
	eq(t, m, "3600s", "android", "ttl")
	eq(t, m, "IM_MESS_17", "android", "collapse_key")
	eq(t, m, "default", "android", "notification", "sound")
	eq(t, m, "IM_MESS_17", "android", "notification", "tag")
	eq(t, m, "5", "apns", "headers", "apns-priority")
	eq(t, m, "alert", "apns", "headers", "apns-push-type")
	eq(t, m, strconv.FormatInt(t0.Add(time.Hour).Unix(), 10), "apns", "headers", "apns-expiration")
	eq(t, m, "IM_MESS_17", "apns", "headers", "apns-collapse-id")
	eq(t, m, "Anna", "apns", "payload", "aps", "alert", "title")
	eq(t, m, "chat", "apns", "payload", "aps", "alert", "subtitle")
	eq(t, m, "Hi there", "apns", "payload", "aps", "alert", "body")
	eq(t, m, float64(3), "apns", "payload", "aps", "badge")
	eq(t, m, "default", "apns", "payload", "aps", "sound")
	eq(t, m, "IM_MESSAGE", "apns", "payload", "aps", "category")
	eq(t, m, "chat17", "apns", "payload", "aps", "thread-id")
	eq(t, m, float64(1), "apns", "payload", "aps", "mutable-content")
	absent(t, m, "apns", "payload", "aps", "content-available")
}

func TestSendDefaultsHighPriorityWithoutExpiry(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	res := p.Send(context.Background(), []providers.Message{msg("tok", &providers.Notification{Body: "x"})})
	if res[0].Class != providers.Delivered {
		t.Fatalf("result %+v", res[0])
	}
	m := onlyRequest(t, f).Message
	eq(t, m, "high", "android", "priority")
	eq(t, m, "10", "apns", "headers", "apns-priority")
	absent(t, m, "android", "ttl")
	absent(t, m, "apns", "headers", "apns-expiration")
	absent(t, m, "data")
}

func TestBackgroundPushIsDataOnly(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	n := &providers.Notification{Title: "t", Body: "b", Sound: "default", PushType: providers.PushBackground,
		Data: json.RawMessage(`{"sync":"1"}`)}
	if res := p.Send(context.Background(), []providers.Message{msg("tok", n)}); res[0].Class != providers.Delivered {
		t.Fatalf("result %+v", res[0])
	}
	m := onlyRequest(t, f).Message
	absent(t, m, "notification")
	absent(t, m, "android", "notification")
	absent(t, m, "apns", "payload", "aps", "alert")
	absent(t, m, "apns", "payload", "aps", "sound")
	eq(t, m, float64(1), "apns", "payload", "aps", "content-available")
	eq(t, m, "background", "apns", "headers", "apns-push-type")
	eq(t, m, "5", "apns", "headers", "apns-priority")
	eq(t, m, "1", "data", "sync")
}

func TestClassification(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	rows := []struct {
		name       string
		b          fake.FCMBehavior
		class      providers.Class
		reason     string
		status     int
		retryAfter time.Duration
	}{
		{"ok", fake.FCMBehavior{}, providers.Delivered, "", 200, 0},
		{"unregistered", fake.FCMBehavior{ErrorCode: fake.FCMUnregistered}, providers.TokenInvalid, "UNREGISTERED", 404, 0},
		{"sender-mismatch", fake.FCMBehavior{ErrorCode: fake.FCMSenderIDMismatch}, providers.TokenInvalid, "SENDER_ID_MISMATCH", 403, 0},
		{"invalid-token", fake.FCMBehavior{ErrorCode: fake.FCMInvalidArgument, Field: fake.FCMTokenField}, providers.TokenInvalid, "INVALID_ARGUMENT", 400, 0},
		{"invalid-message", fake.FCMBehavior{ErrorCode: fake.FCMInvalidArgument, Field: "message.android.ttl"}, providers.Rejected, "INVALID_ARGUMENT", 400, 0},
		{"invalid-no-detail", fake.FCMBehavior{ErrorCode: fake.FCMInvalidArgument}, providers.Rejected, "INVALID_ARGUMENT", 400, 0},
		{"quota", fake.FCMBehavior{ErrorCode: fake.FCMQuotaExceeded, RetryAfter: 7 * time.Second}, providers.Retry, "QUOTA_EXCEEDED", 429, 7 * time.Second},
		{"internal", fake.FCMBehavior{ErrorCode: fake.FCMInternal}, providers.Retry, "INTERNAL", 500, 0},
		// A Retry-After beyond the SDK's 2-minute cap stops its own retry.
		{"unavailable", fake.FCMBehavior{ErrorCode: fake.FCMUnavailable, RetryAfter: 3 * time.Minute}, providers.Retry, "UNAVAILABLE", 503, 3 * time.Minute},
		{"third-party-auth", fake.FCMBehavior{ErrorCode: fake.FCMThirdPartyAuthError}, providers.Rejected, "THIRD_PARTY_AUTH_ERROR", 401, 0},
		{"plain-404", fake.FCMBehavior{Status: 404}, providers.Rejected, "NOT_FOUND", 404, 0},
		{"plain-429", fake.FCMBehavior{Status: 429, RetryAfter: time.Second}, providers.Retry, "RESOURCE_EXHAUSTED", 429, time.Second},
		{"plain-502", fake.FCMBehavior{Status: 502}, providers.Retry, "HTTP 502", 502, 0},
	}
	batch := make([]providers.Message, len(rows))
	n := &providers.Notification{Title: "t"}
	for i, r := range rows {
		f.Script("tok-"+r.name, r.b)
		batch[i] = msg("tok-"+r.name, n)
	}
	res := p.Send(context.Background(), batch)
	for i, r := range rows {
		got := res[i]
		if got.Class != r.class || got.Reason != r.reason || got.Status != r.status || got.RetryAfter != r.retryAfter {
			t.Errorf("%s: got class=%v reason=%q status=%d retryAfter=%v (err %v), want %v %q %d %v",
				r.name, got.Class, got.Reason, got.Status, got.RetryAfter, got.Err, r.class, r.reason, r.status, r.retryAfter)
		}
		if (got.Class == providers.Delivered) != (got.Err == nil) {
			t.Errorf("%s: Err = %v for class %v", r.name, got.Err, got.Class)
		}
	}
}

func TestSDKRetriesOne503Itself(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	f.Script("tok", fake.FCMBehavior{ErrorCode: fake.FCMUnavailable, Times: 1})
	res := p.Send(context.Background(), []providers.Message{msg("tok", &providers.Notification{Body: "b"})})
	if res[0].Class != providers.Delivered || f.Requests() != 2 {
		t.Fatalf("result %+v after %d requests; want delivered on the SDK's immediate retry", res[0], f.Requests())
	}
}

func TestTimeoutIsRetry(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, func(o *fcm.Options) { o.Timeout = 100 * time.Millisecond })
	f.Script("slow", fake.FCMBehavior{Delay: time.Minute})
	// The SDK retries 503 after 0 s, then 1 s: a 100 ms bound ends it.
	f.Script("down", fake.FCMBehavior{ErrorCode: fake.FCMUnavailable})
	n := &providers.Notification{Body: "b"}
	res := p.Send(context.Background(), []providers.Message{msg("slow", n), msg("down", n)})
	for i, r := range res {
		if r.Class != providers.Retry || r.Reason != fcm.ReasonTimeout || r.Err == nil {
			t.Errorf("result %d = %+v, want retry/timeout", i, r)
		}
	}
}

func TestCancelledContextSendsNothing(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	n := &providers.Notification{Body: "b"}
	res := p.Send(ctx, []providers.Message{msg("a", n), msg("b", n), msg("c", n)})
	for i, r := range res {
		if r.Class != providers.Retry || r.Reason != fcm.ReasonCancelled || !errors.Is(r.Err, context.Canceled) {
			t.Errorf("result %d = %+v, want retry/cancelled", i, r)
		}
	}
	if f.Requests() != 0 {
		t.Errorf("fake got %d requests after cancel", f.Requests())
	}
}

func TestUnknownAppIsRejected(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	m := msg("tok", &providers.Notification{Body: "b"})
	m.Target.AppID = "other"
	res := p.Send(context.Background(), []providers.Message{m, msg("tok2", m.Notification)})
	if r := res[0]; r.Class != providers.Rejected || !errors.Is(r.Err, fcm.ErrUnknownApp) ||
		!strings.Contains(r.Err.Error(), "no FCM app configured for other") {
		t.Errorf("unknown app result %+v", r)
	}
	if res[1].Class != providers.Delivered {
		t.Errorf("known app result %+v", res[1])
	}
	if p.HasApp("other") || !p.HasApp("app") || p.Platform() != providers.PlatformFCM {
		t.Error("HasApp/Platform disagree with the configuration")
	}
	if got := f.Received(); len(got) != 1 || got[0].Token != "tok2" {
		t.Errorf("fake received %+v, want only tok2", got)
	}
}

func TestOwnOAuthRefusedIsRejected(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{}) // requires tokens it issued
	p := plainProvider(t, f, nil)        // sends none
	res := p.Send(context.Background(), []providers.Message{msg("tok", &providers.Notification{Body: "b"})})
	if r := res[0]; r.Class != providers.Rejected || r.Status != 401 || r.Reason != "UNAUTHENTICATED" {
		t.Errorf("result %+v, want rejected/401 UNAUTHENTICATED", r)
	}
}

func TestBatchLargerThanSDKLimitKeepsOrder(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, func(o *fcm.Options) { o.Concurrency = 32 })
	const size = 1200
	batch := make([]providers.Message, size)
	n := &providers.Notification{Title: "t", Body: "b"}
	for i := range batch {
		tok := "tok-" + strconv.Itoa(i)
		if i%97 == 0 {
			f.Script(tok, fake.FCMBehavior{ErrorCode: fake.FCMUnregistered})
		}
		batch[i] = msg(tok, n)
	}
	res := p.Send(context.Background(), batch)
	if len(res) != size {
		t.Fatalf("%d results for %d messages", len(res), size)
	}
	ids := make(map[string]bool, size)
	for i, r := range res {
		want := providers.Delivered
		if i%97 == 0 {
			want = providers.TokenInvalid
		}
		if r.Class != want {
			t.Fatalf("result %d = %+v, want %v", i, r, want)
		}
		if r.Class == providers.Delivered {
			if ids[r.ProviderID] {
				t.Fatalf("result %d: duplicate message name %q", i, r.ProviderID)
			}
			ids[r.ProviderID] = true
		}
	}
	seen := make(map[string]bool, size)
	for _, r := range f.Received() {
		seen[r.Token] = true
	}
	if len(seen) != size || f.Requests() != size {
		t.Errorf("fake saw %d distinct tokens in %d requests, want %d", len(seen), f.Requests(), size)
	}
}

func TestCloseIsIdempotentAndStopsSends(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{NoAuth: true})
	p := plainProvider(t, f, nil)
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	res := p.Send(context.Background(), []providers.Message{msg("tok", &providers.Notification{Body: "b"})})
	if res[0].Class != providers.Retry || !errors.Is(res[0].Err, fcm.ErrClosed) {
		t.Errorf("send after close = %+v", res[0])
	}
}

func TestOAuthOverCallerClientWithTwoApps(t *testing.T) {
	t.Parallel()
	f := startFake(t, fake.FCMOptions{TLS: true})
	var apps []fcm.App
	for _, id := range []string{"one", "two"} {
		sa, err := f.ServiceAccountJSON("project-" + id)
		if err != nil {
			t.Fatal(err)
		}
		apps = append(apps, fcm.App{ID: id, CredentialsJSON: sa})
	}
	// The caller's client is the only one that trusts the fake's
	// certificate: sends and token fetches must both go through it.
	p := newProvider(t, fcm.Options{Apps: apps, Endpoint: f.URL() + "/v1", HTTPClient: f.Client()})
	n := &providers.Notification{Body: "b"}
	batch := []providers.Message{msg("a", n), msg("b", n)}
	batch[0].Target.AppID, batch[1].Target.AppID = "one", "two"
	for i, r := range p.Send(context.Background(), batch) {
		if r.Class != providers.Delivered {
			t.Fatalf("message %d: %+v", i, r)
		}
	}
	projects := map[string]string{}
	for _, r := range f.Received() {
		projects[r.Token] = r.Project
	}
	if projects["a"] != "project-one" || projects["b"] != "project-two" || f.TokensIssued() != 2 {
		t.Errorf("projects by token %v, tokens issued %d", projects, f.TokensIssued())
	}
}
