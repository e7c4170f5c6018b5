package fake_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers/fake"
)

func hmsStart(t *testing.T, opts fake.HMSOptions) *fake.HMS {
	t.Helper()
	f, err := fake.NewHMS(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	f.AddClient("101", "sec", "101")
	return f
}

func hmsGrant(t *testing.T, f *fake.HMS, secret string) (int, map[string]any) {
	t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "client_id": {"101"}, "client_secret": {secret}}
	resp, err := f.Client().PostForm(f.TokenURL(), form)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

func hmsSend(t *testing.T, f *fake.HMS, app, access, body string) (int, map[string]string, http.Header) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, f.URL()+"/v1/"+app+"/messages:send", strings.NewReader(body))
	if access != "" {
		req.Header.Set("Authorization", "Bearer "+access)
	}
	resp, err := f.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out, resp.Header
}

func TestHMSOAuthGrant(t *testing.T) {
	t.Parallel()
	f := hmsStart(t, fake.HMSOptions{})
	status, body := hmsGrant(t, f, "sec")
	if status != 200 || body["token_type"] != "Bearer" || body["expires_in"] != float64(3600) || body["access_token"] == "" {
		t.Fatalf("grant: %d %v", status, body)
	}
	status, body = hmsGrant(t, f, "bad")
	if status != 400 || body["error"] != float64(1101) || body["error_description"] == "" {
		t.Fatalf("bad secret: %d %v", status, body)
	}
	if f.TokensIssued() != 1 {
		t.Fatalf("issued %d", f.TokensIssued())
	}
}

func TestHMSSendAnswers(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f := hmsStart(t, fake.HMSOptions{Now: func() time.Time { return now }})
	_, g := hmsGrant(t, f, "sec")
	access := g["access_token"].(string)
	const ok = `{"message":{"data":"{\"a\":1}","token":["t1"]}}`

	cases := []struct {
		name, app, access, body string
		status                  int
		code                    string
	}{
		{"success", "101", access, ok, 200, fake.HMSSuccess},
		{"no auth", "101", "", ok, 401, fake.HMSOAuthError},
		{"foreign app", "202", access, ok, 401, fake.HMSOAuthError},
		{"not json", "101", access, `{`, 400, fake.HMSBadMessage},
		{"data must be a string", "101", access, `{"message":{"data":{"a":1},"token":["t1"]}}`, 400, fake.HMSBadMessage},
		{"no target", "101", access, `{"message":{"data":"x"}}`, 400, fake.HMSParameterError},
		{"no click action", "101", access, `{"message":{"android":{"notification":{"title":"a","body":"b"}},"token":["t1"]}}`, 400, fake.HMSBadMessage},
		{"bad ttl", "101", access, `{"message":{"data":"x","android":{"ttl":"1 day"},"token":["t1"]}}`, 400, fake.HMSBadMessage},
		{"too large", "101", access, `{"message":{"data":"` + strings.Repeat("x", 4100) + `","token":["t1"]}}`, 400, fake.HMSMessageTooLarge},
	}
	for _, c := range cases {
		status, body, _ := hmsSend(t, f, c.app, c.access, c.body)
		if status != c.status || body["code"] != c.code || body["requestId"] == "" || body["msg"] == "" {
			t.Errorf("%s: %d %v, want %d %s", c.name, status, body, c.status, c.code)
		}
	}

	f.Script("dead", fake.HMSBehavior{Code: fake.HMSAllTokensInvalid})
	status, body, _ := hmsSend(t, f, "101", access, `{"message":{"data":"x","token":["t1","dead"]}}`)
	if status != 200 || body["code"] != fake.HMSPartialSuccess {
		t.Fatalf("partial: %d %v", status, body)
	}
	var msg struct {
		Success, Failure int
		IllegalTokens    []string `json:"illegal_tokens"`
	}
	if err := json.Unmarshal([]byte(body["msg"]), &msg); err != nil || msg.Success != 1 || msg.Failure != 1 || msg.IllegalTokens[0] != "dead" {
		t.Fatalf("partial msg %q: %v", body["msg"], err)
	}
	status, body, _ = hmsSend(t, f, "101", access, `{"message":{"data":"x","token":["dead"]}}`)
	if status != 400 || body["code"] != fake.HMSAllTokensInvalid {
		t.Fatalf("all invalid: %d %v", status, body)
	}

	f.Script("busy", fake.HMSBehavior{Status: 503, RetryAfter: 1500 * time.Millisecond, Times: 1})
	status, _, hdr := hmsSend(t, f, "101", access, `{"message":{"data":"x","token":["busy"]}}`)
	if status != 503 || hdr.Get("Retry-After") != "2" {
		t.Fatalf("flow control: %d %q", status, hdr.Get("Retry-After"))
	}
	if status, _, _ = hmsSend(t, f, "101", access, `{"message":{"data":"x","token":["busy"]}}`); status != 200 {
		t.Fatalf("after Times: %d", status)
	}

	f.RevokeTokens()
	if status, body, _ = hmsSend(t, f, "101", access, ok); status != 401 || body["code"] != fake.HMSTokenExpired {
		t.Fatalf("revoked: %d %v", status, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := f.WaitDelivered(ctx, 3); err != nil {
		t.Fatal(err)
	}
	if rq := f.Received(); rq[0].Tokens[0] != "t1" || rq[0].Message["data"] != `{"a":1}` {
		t.Fatalf("recorded: %+v", rq[0])
	}
}
