package fake

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/net/http2"
)

const (
	testKeyID  = "KEY1234567"
	testTeamID = "TEAM123456"
	testToken  = "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"
)

type apnsHarness struct {
	f      *APNs
	hc     *http.Client
	key    *ecdsa.PrivateKey
	bearer string
}

func newAPNsHarness(t *testing.T, opts APNsOptions) *apnsHarness {
	t.Helper()
	f, err := NewAPNs(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	pemBytes, pub, err := NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	f.AddKey(testKeyID, testTeamID, pub)
	key := parseKey(t, pemBytes)
	tr := &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: f.CertPool()}}
	t.Cleanup(tr.CloseIdleConnections)
	h := &apnsHarness{f: f, hc: &http.Client{Transport: tr}, key: key}
	h.bearer = signJWT(t, key, testKeyID, testTeamID, time.Now())
	return h
}

func parseKey(t *testing.T, pemBytes []byte) *ecdsa.PrivateKey {
	t.Helper()
	block, _ := pem.Decode(pemBytes)
	if block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("NewAPNsKey: not a PKCS#8 PEM: %q", pemBytes)
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(*ecdsa.PrivateKey)
}

func signJWT(t *testing.T, key *ecdsa.PrivateKey, kid, iss string, iat time.Time) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": iss, "iat": iat.Unix()})
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
	raw    string
}

// push sends one request; hdr entries override the defaults (an empty
// value removes the header).
func (h *apnsHarness) push(t *testing.T, method, path, body string, hdr map[string]string) answer {
	t.Helper()
	req, err := http.NewRequest(method, h.f.URL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("authorization", "bearer "+h.bearer)
	req.Header.Set("apns-topic", "com.example.app")
	req.Header.Set("apns-push-type", "alert")
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := h.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.ProtoMajor != 2 {
		t.Fatalf("proto %s, want HTTP/2", resp.Proto)
	}
	raw, _ := io.ReadAll(resp.Body)
	a := answer{status: resp.StatusCode, header: resp.Header, raw: string(raw)}
	if len(raw) > 0 && resp.Header.Get("Content-Type") == "application/json" {
		if err := json.Unmarshal(raw, &a.body); err != nil {
			t.Fatalf("error body %q: %v", raw, err)
		}
	}
	return a
}

func TestAPNsValidation(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{})
	path := "/3/device/" + testToken
	cases := []struct {
		name, method, path, body string
		hdr                      map[string]string
		status                   int
		reason                   string
	}{
		{"ok", "POST", path, `{"aps":{}}`, nil, 200, ""},
		{"method", "GET", path, ``, nil, 405, APNsMethodNotAllowed},
		{"path", "POST", "/3/devices/" + testToken, `{}`, nil, 404, APNsBadPath},
		{"no token", "POST", "/3/device/", `{}`, nil, 400, APNsMissingDeviceToken},
		{"no auth", "POST", path, `{}`, map[string]string{"authorization": ""}, 403, APNsMissingProviderToken},
		{"garbage jwt", "POST", path, `{}`, map[string]string{"authorization": "bearer x.y.z"}, 403, APNsInvalidProviderToken},
		{"no topic", "POST", path, `{}`, map[string]string{"apns-topic": ""}, 400, APNsMissingTopic},
		{"push type", "POST", path, `{}`, map[string]string{"apns-push-type": "shout"}, 400, APNsInvalidPushType},
		{"priority", "POST", path, `{}`, map[string]string{"apns-priority": "7"}, 400, APNsBadPriority},
		{"expiration", "POST", path, `{}`, map[string]string{"apns-expiration": "soon"}, 400, APNsBadExpirationDate},
		{"collapse", "POST", path, `{}`, map[string]string{"apns-collapse-id": strings.Repeat("c", 65)}, 400, APNsBadCollapseID},
		{"apns-id", "POST", path, `{}`, map[string]string{"apns-id": "not-a-uuid"}, 400, APNsBadMessageID},
		{"hex", "POST", "/3/device/zz" + testToken[2:], `{}`, nil, 400, APNsBadDeviceToken},
		{"empty", "POST", path, ``, nil, 400, APNsPayloadEmpty},
		{"too large", "POST", path, `{"a":"` + strings.Repeat("x", 4090) + `"}`, nil, 413, APNsPayloadTooLarge},
		{"voip fits", "POST", path, `{"a":"` + strings.Repeat("x", 5000) + `"}`, map[string]string{"apns-push-type": "voip"}, 200, ""},
		{"voip too large", "POST", path, `{"a":"` + strings.Repeat("x", 5120) + `"}`, map[string]string{"apns-push-type": "voip"}, 413, APNsPayloadTooLarge},
	}
	for _, c := range cases {
		a := h.push(t, c.method, c.path, c.body, c.hdr)
		if a.status != c.status {
			t.Errorf("%s: status %d (%s), want %d", c.name, a.status, a.raw, c.status)
			continue
		}
		if c.status == 200 {
			if a.header.Get("apns-id") == "" || a.raw != "" {
				t.Errorf("%s: 200 without apns-id or with body %q", c.name, a.raw)
			}
			continue
		}
		if a.body["reason"] != c.reason {
			t.Errorf("%s: reason %v, want %s", c.name, a.body["reason"], c.reason)
		}
	}
	if got := h.f.Delivered(); got != 2 {
		t.Errorf("Delivered = %d, want 2", got)
	}
	if got := h.f.Requests(); got != int64(len(cases)) {
		t.Errorf("Requests = %d, want %d", got, len(cases))
	}
}

func TestAPNsRecordsRequest(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{})
	id := "123e4567-e89b-12d3-a456-426655440000"
	a := h.push(t, "POST", "/3/device/"+testToken, `{"aps":{"badge":1}}`, map[string]string{
		"apns-id": id, "apns-priority": "5", "apns-collapse-id": "c1", "apns-expiration": "1700000000",
	})
	if a.status != 200 || a.header.Get("apns-id") != id {
		t.Fatalf("status %d apns-id %q, want 200 echoing %s", a.status, a.header.Get("apns-id"), id)
	}
	got := h.f.Received()
	if len(got) != 1 {
		t.Fatalf("Received %d requests", len(got))
	}
	r := got[0]
	if r.Token != testToken || r.Topic != "com.example.app" || r.PushType != "alert" || r.Priority != "5" ||
		r.CollapseID != "c1" || r.Expiration != "1700000000" || r.APNsID != id || r.Status != 200 {
		t.Errorf("recorded %+v", r)
	}
	if r.KeyID != testKeyID || r.TeamID != testTeamID || r.Bearer != h.bearer {
		t.Errorf("auth recorded as kid %q team %q", r.KeyID, r.TeamID)
	}
	if string(r.Payload) != `{"aps":{"badge":1}}` || r.Header.Get("apns-collapse-id") != "c1" {
		t.Errorf("payload %s header %v", r.Payload, r.Header)
	}
}

func TestAPNsProviderToken(t *testing.T) {
	t.Parallel()
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	h := newAPNsHarness(t, APNsOptions{Now: clock})
	path := "/3/device/" + testToken
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 200 {
		t.Fatalf("fresh token: %d %s", a.status, a.raw)
	}
	// The cached verdict must still be re-judged for age.
	mu.Lock()
	now = now.Add(61 * time.Minute)
	mu.Unlock()
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 403 || a.body["reason"] != APNsExpiredProviderToken {
		t.Fatalf("aged token: %d %s", a.status, a.raw)
	}
	other, _, _ := NewAPNsKey()
	for name, bearer := range map[string]string{
		"wrong key":  signJWT(t, parseKey(t, other), testKeyID, testTeamID, clock()),
		"wrong team": signJWT(t, h.key, testKeyID, "OTHERTEAM0", clock()),
		"wrong kid":  signJWT(t, h.key, "NOKEY00000", testTeamID, clock()),
	} {
		a := h.push(t, "POST", path, `{}`, map[string]string{"authorization": "bearer " + bearer})
		if a.status != 403 || a.body["reason"] != APNsInvalidProviderToken {
			t.Errorf("%s: %d %s", name, a.status, a.raw)
		}
	}
}

func TestAPNsScripting(t *testing.T) {
	t.Parallel()
	now := time.Now()
	h := newAPNsHarness(t, APNsOptions{Now: func() time.Time { return now }})
	path := "/3/device/" + testToken
	h.f.Script(testToken, Behavior{Status: 503, Reason: APNsServiceUnavailable, Times: 2, RetryAfter: 1500 * time.Millisecond})
	for i := range 2 {
		a := h.push(t, "POST", path, `{}`, nil)
		if a.status != 503 || a.body["reason"] != APNsServiceUnavailable || a.header.Get("Retry-After") != "2" {
			t.Fatalf("attempt %d: %d %s retry-after %q", i, a.status, a.raw, a.header.Get("Retry-After"))
		}
	}
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 200 {
		t.Fatalf("after Times: %d", a.status)
	}

	h.f.Script(testToken, Behavior{Status: 410, Reason: APNsUnregistered})
	a := h.push(t, "POST", path, `{}`, nil)
	if a.status != 410 || a.body["reason"] != APNsUnregistered || a.body["timestamp"] != float64(now.UnixMilli()) {
		t.Fatalf("410: %d %s", a.status, a.raw)
	}

	h.f.Script(testToken, Behavior{Status: 502, RawBody: "<html>bad gateway</html>", Times: 1})
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 502 || a.raw != "<html>bad gateway</html>" {
		t.Fatalf("raw body: %d %q", a.status, a.raw)
	}

	// A default with Until reverts to success when the clock passes it.
	h.f.Script(testToken, Behavior{Status: 400, Reason: APNsBadTopic, Until: now})
	h.f.SetDefault(Behavior{Status: 503, Reason: APNsShutdown, Until: now.Add(time.Second)})
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 503 {
		t.Fatalf("default before Until: %d %s", a.status, a.raw)
	}
	h.f.SetDefault(Behavior{Status: 503, Reason: APNsShutdown, Until: now})
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 200 {
		t.Fatalf("default at Until: %d %s", a.status, a.raw)
	}
}

func TestAPNsDelayHonoursClientDeadline(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{})
	h.f.SetDefault(Behavior{Delay: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", h.f.URL()+"/3/device/"+testToken, strings.NewReader(`{}`))
	req.Header.Set("authorization", "bearer "+h.bearer)
	req.Header.Set("apns-topic", "t")
	_, err := h.hc.Do(req)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want deadline exceeded", err)
	}
	// Close must not wait an hour for the held answer.
	h.f.Close()
}

func TestAPNsDownUp(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{})
	path := "/3/device/" + testToken
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 200 {
		t.Fatal(a.status)
	}
	h.f.Down()
	req, _ := http.NewRequest("POST", h.f.URL()+path, strings.NewReader(`{}`))
	req.Header.Set("apns-topic", "t")
	// The old connection was cut: that client fails one way or another
	// (broken pipe, EOF), depending on whether it noticed yet.
	if _, err := h.hc.Do(req); err == nil {
		t.Fatal("old client: push succeeded while down")
	}
	// A new connection is refused.
	fresh := &http.Client{Transport: &http2.Transport{TLSClientConfig: &tls.Config{RootCAs: h.f.CertPool()}}}
	req, _ = http.NewRequest("POST", h.f.URL()+path, strings.NewReader(`{}`))
	if _, err := fresh.Do(req); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Fatalf("while down: %v, want connection refused", err)
	}
	if err := h.f.Up(); err != nil {
		t.Fatal(err)
	}
	if a := h.push(t, "POST", path, `{}`, nil); a.status != 200 {
		t.Fatalf("after Up: %d", a.status)
	}
}

func TestAPNsWaitDelivered(t *testing.T) {
	t.Parallel()
	h := newAPNsHarness(t, APNsOptions{CountOnly: true})
	const n = 20
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			req, _ := http.NewRequest("POST", h.f.URL()+"/3/device/"+testToken, bytes.NewReader([]byte(`{}`)))
			req.Header.Set("authorization", "bearer "+h.bearer)
			req.Header.Set("apns-topic", "t")
			resp, err := h.hc.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
		})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h.f.WaitDelivered(ctx, n); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(h.f.Received()) != 0 {
		t.Error("CountOnly recorded requests")
	}
	short, cancel2 := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel2()
	if err := h.f.WaitDelivered(short, n+1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WaitDelivered(n+1) = %v", err)
	}
	h.f.Close()
	h.f.Close() // idempotent
}
