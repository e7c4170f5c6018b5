package fake_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/pushpull/pushpull/providers/fake"
)

type fcmSA struct {
	ProjectID    string `json:"project_id"`
	PrivateKeyID string `json:"private_key_id"`
	PrivateKey   string `json:"private_key"`
	ClientEmail  string `json:"client_email"`
	TokenURI     string `json:"token_uri"`
}

func fcmStart(t *testing.T, opts fake.FCMOptions) *fake.FCM {
	t.Helper()
	f, err := fake.NewFCM(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

func fcmAccount(t *testing.T, f *fake.FCM, project string) (fcmSA, *rsa.PrivateKey) {
	t.Helper()
	raw, err := f.ServiceAccountJSON(project)
	if err != nil {
		t.Fatal(err)
	}
	var sa fcmSA
	if err := json.Unmarshal(raw, &sa); err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode([]byte(sa.PrivateKey))
	if block == nil {
		t.Fatal("no PEM private key in the service account")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return sa, k.(*rsa.PrivateKey)
}

func fcmAssertion(t *testing.T, sa fcmSA, key *rsa.PrivateKey, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": sa.ClientEmail, "aud": sa.TokenURI, "scope": "https://www.googleapis.com/auth/firebase.messaging",
		"iat": iat.Unix(), "exp": iat.Add(time.Hour).Unix(),
	})
	tok.Header["kid"] = sa.PrivateKeyID
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fcmGrant posts a JWT-bearer grant and returns the status and JSON body.
func fcmGrant(t *testing.T, sa fcmSA, grantType, assertion string) (int, map[string]any) {
	t.Helper()
	resp, err := http.PostForm(sa.TokenURI, url.Values{"grant_type": {grantType}, "assertion": {assertion}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, body
}

const fcmGrantType = "urn:ietf:params:oauth:grant-type:jwt-bearer"

func fcmSend(t *testing.T, f *fake.FCM, project, bearer, body string) (int, http.Header, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, f.URL()+"/v1/projects/"+project+"/messages:send", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("body %q: %v", raw, err)
	}
	return resp.StatusCode, resp.Header, out
}

func TestFCMTokenEndpointVerifiesTheAssertion(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	f := fcmStart(t, fake.FCMOptions{Now: func() time.Time { return now }})
	sa, key := fcmAccount(t, f, "p1")
	if !strings.HasPrefix(sa.TokenURI, f.URL()) || sa.ProjectID != "p1" {
		t.Fatalf("service account %+v does not point at the fake", sa)
	}

	status, body := fcmGrant(t, sa, fcmGrantType, fcmAssertion(t, sa, key, now))
	if status != 200 || body["token_type"] != "Bearer" || body["access_token"] == "" || body["expires_in"] != float64(3600) {
		t.Fatalf("grant: %d %v", status, body)
	}

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	refusals := map[string]struct{ grant, assertion, code string }{
		"grant type":  {"client_credentials", fcmAssertion(t, sa, key, now), "unsupported_grant_type"},
		"foreign key": {fcmGrantType, fcmAssertion(t, sa, other, now), "invalid_grant"},
		"expired":     {fcmGrantType, fcmAssertion(t, sa, key, now.Add(-2*time.Hour)), "invalid_grant"},
		"not a jwt":   {fcmGrantType, "garbage", "invalid_grant"},
		"wrong issuer": {fcmGrantType, func() string {
			s := sa
			s.ClientEmail = "someone@else"
			return fcmAssertion(t, s, key, now)
		}(), "invalid_grant"},
	}
	for name, r := range refusals {
		status, body := fcmGrant(t, sa, r.grant, r.assertion)
		if status != 400 || body["error"] != r.code {
			t.Errorf("%s: %d %v, want 400 %s", name, status, body, r.code)
		}
	}
	if f.TokensIssued() != 1 {
		t.Errorf("TokensIssued = %d, want 1", f.TokensIssued())
	}
}

func TestFCMSendRequiresAnIssuedTokenForTheProject(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	var clock atomic.Int64 // nanoseconds past now; read by server goroutines
	f := fcmStart(t, fake.FCMOptions{Now: func() time.Time { return now.Add(time.Duration(clock.Load())) }, TokenTTL: time.Minute})
	sa, key := fcmAccount(t, f, "p1")
	_, body := fcmGrant(t, sa, fcmGrantType, fcmAssertion(t, sa, key, now))
	access := body["access_token"].(string)
	msg := `{"message":{"token":"t1","notification":{"title":"x"}}}`

	if status, _, b := fcmSend(t, f, "p1", "", msg); status != 401 || fcmErrStatus(b) != "UNAUTHENTICATED" {
		t.Errorf("no token: %d %v", status, b)
	}
	if status, _, b := fcmSend(t, f, "p1", "forged", msg); status != 401 {
		t.Errorf("forged token: %d %v", status, b)
	}
	if status, _, b := fcmSend(t, f, "p2", access, msg); status != 403 || fcmErrStatus(b) != "PERMISSION_DENIED" {
		t.Errorf("other project: %d %v", status, b)
	}
	status, _, b := fcmSend(t, f, "p1", access, msg)
	if status != 200 || !strings.HasPrefix(b["name"].(string), "projects/p1/messages/") {
		t.Fatalf("valid send: %d %v", status, b)
	}
	got := f.Received()
	last := got[len(got)-1]
	if last.Token != "t1" || last.Auth != access || last.Project != "p1" || last.Status != 200 {
		t.Errorf("recorded %+v", last)
	}
	if title, _ := last.Message["notification"].(map[string]any)["title"].(string); title != "x" {
		t.Errorf("recorded message %v", last.Message)
	}
	clock.Store(int64(2 * time.Minute)) // past TokenTTL
	if status, _, _ := fcmSend(t, f, "p1", access, msg); status != 401 {
		t.Errorf("expired access token: %d, want 401", status)
	}
}

func fcmErrStatus(body map[string]any) string {
	e, _ := body["error"].(map[string]any)
	s, _ := e["status"].(string)
	return s
}

func TestFCMErrorBodiesAreGoogleShaped(t *testing.T) {
	t.Parallel()
	f := fcmStart(t, fake.FCMOptions{NoAuth: true})
	f.Script("dead", fake.FCMBehavior{ErrorCode: fake.FCMUnregistered})
	f.Script("bad", fake.FCMBehavior{ErrorCode: fake.FCMInvalidArgument, Field: fake.FCMTokenField})
	f.Script("busy", fake.FCMBehavior{ErrorCode: fake.FCMQuotaExceeded, RetryAfter: 1500 * time.Millisecond})

	status, _, b := fcmSend(t, f, "p", "", `{"message":{"token":"dead"}}`)
	want := `{"error":{"code":404,"details":[{"@type":"type.googleapis.com/google.firebase.fcm.v1.FcmError","errorCode":"UNREGISTERED"}],"message":"Requested entity was not found.","status":"NOT_FOUND"}}`
	if got, _ := json.Marshal(b); status != 404 || string(got) != want {
		t.Errorf("unregistered: %d %s\nwant %s", status, got, want)
	}

	status, _, b = fcmSend(t, f, "p", "", `{"message":{"token":"bad"}}`)
	details := b["error"].(map[string]any)["details"].([]any)
	if status != 400 || len(details) != 2 ||
		details[1].(map[string]any)["fieldViolations"].([]any)[0].(map[string]any)["field"] != "message.token" {
		t.Errorf("invalid token: %d %v", status, b)
	}

	status, h, _ := fcmSend(t, f, "p", "", `{"message":{"token":"busy"}}`)
	if status != 429 || h.Get("Retry-After") != "2" {
		t.Errorf("quota: %d Retry-After %q, want 429 and 2 (rounded up)", status, h.Get("Retry-After"))
	}

	for name, body := range map[string]string{
		"no target":   `{"message":{"notification":{}}}`,
		"two targets": `{"message":{"token":"a","topic":"b"}}`,
		"not json":    `{`,
	} {
		if status, _, b := fcmSend(t, f, "p", "", body); status != 400 || fcmErrStatus(b) != "INVALID_ARGUMENT" {
			t.Errorf("%s: %d %v", name, status, b)
		}
	}
}

func TestFCMScriptTimesThenDefault(t *testing.T) {
	t.Parallel()
	f := fcmStart(t, fake.FCMOptions{NoAuth: true})
	f.Script("t", fake.FCMBehavior{ErrorCode: fake.FCMInternal, Times: 2})
	f.SetDefault(fake.FCMBehavior{Status: 503, ErrorCode: fake.FCMUnavailable})
	var got []int
	for range 4 {
		status, _, _ := fcmSend(t, f, "p", "", `{"message":{"token":"t"}}`)
		got = append(got, status)
	}
	f.SetDefault(fake.FCMBehavior{})
	status, _, _ := fcmSend(t, f, "p", "", `{"message":{"token":"t"}}`)
	got = append(got, status)
	want := []int{500, 500, 503, 503, 200}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("statuses %v, want %v", got, want)
		}
	}
	if f.Requests() != 5 || f.Delivered() != 1 {
		t.Errorf("Requests %d Delivered %d", f.Requests(), f.Delivered())
	}
}

func TestFCMWaitDeliveredAndCountOnly(t *testing.T) {
	t.Parallel()
	f := fcmStart(t, fake.FCMOptions{NoAuth: true, CountOnly: true, TLS: true})
	if !strings.HasPrefix(f.URL(), "https://") {
		t.Fatalf("URL %q with TLS", f.URL())
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		done <- f.WaitDelivered(ctx, 3)
	}()
	for range 3 {
		if status, _, _ := fcmSend(t, f, "p", "", `{"message":{"token":"t"}}`); status != 200 {
			t.Fatalf("status %d", status)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(f.Received()) != 0 || f.Delivered() != 3 {
		t.Errorf("count-only fake recorded %d, delivered %d", len(f.Received()), f.Delivered())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := f.WaitDelivered(ctx, 4); err == nil {
		t.Error("WaitDelivered with a cancelled context returned nil")
	}
	f.Close()
	f.Close() // idempotent
}
