package main

import (
	"context"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	gwrelay "github.com/pushpull/pushpull/gateway/relay"
	"github.com/pushpull/pushpull/providers/fake"
)

// TestRelayServed: with [relay] enabled, the real binary takes a portal's
// FCM v1 batch on the publisher listener, answers the XML the portal
// expects, sends it to the (fake) FCM with the [[fcm.app]] the mapping
// names, and never writes the secret path segment to its log.
func TestRelayServed(t *testing.T) {
	dir := t.TempDir()
	f, err := fake.NewFCM(fake.FCMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sa, err := f.ServiceAccountJSON("chat-project")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sa.json"), sa, 0o600); err != nil {
		t.Fatal(err)
	}
	const secret = "relay-secret-0123456789"
	cfg := `[fcm]
endpoint = "` + f.URL() + `/v1"
[[fcm.app]]
id = "android"
credentials_file = "sa.json"
[relay]
enabled = true
secret = "` + secret + `"
license_keys = ["MY-LICENSE"]
[[relay.app]]
key = "Bitrix24"
fcm = "android"
`
	if err := os.WriteFile(filepath.Join(dir, "pushpull.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	p := startGateway(t, dir, "PUSHPULL_CONFIG=pushpull.toml")

	msg := `{"message":{"data":{"contentTitle":"Anna","contentText":"Hi","badge":"1","messageParams":"{}","category":"","sound":""},"android":{"ttl":"600s","priority":"high"},"token":"fcm-token-1"}}`
	frame := base64.StdEncoding.EncodeToString([]byte("Content-type: application/json\r\nContent-length: " +
		strconv.Itoa(len(msg)) + "\r\n\r\n" + msg))
	form := url.Values{"Action": {"SendMessage"}, "MessageBody": {";7;tkey=Bitrix24;h=portal.tld;" + frame}}.Encode()
	u := "http://" + p.api + "/bitrix-relay/" + secret + "/?key=" + gwrelay.LicenseKeyHash("MY-LICENSE")
	res, err := http.Post(u, "application/x-www-form-urlencoded", strings.NewReader(form))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(body), "xml version=") || res.Header.Get("X-Pushpull-Jobs") != "1" {
		t.Fatalf("relay answered %d %s (jobs %s)", res.StatusCode, body, res.Header.Get("X-Pushpull-Jobs"))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.WaitDelivered(ctx, 1); err != nil {
		t.Fatalf("FCM got nothing: %v", err)
	}
	if got := f.Received()[0]; got.Token != "fcm-token-1" || got.Message["data"].(map[string]any)["contentText"] != "Hi" {
		t.Errorf("FCM got %+v", got)
	}
	// The access log line of the request must not hold the secret.
	deadline := time.After(10 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, secret) {
				t.Fatalf("secret in log: %s", l)
			}
			if strings.Contains(l, `msg=request`) && strings.Contains(l, "/bitrix-relay/") {
				return
			}
		case <-deadline:
			t.Fatal("no access log line for the relay request")
		}
	}
}

// TestRelayAppMustExist: a [[relay.app]] naming an app that no provider
// section configures stops startup, naming the key.
func TestRelayAppMustExist(t *testing.T) {
	dir := t.TempDir()
	cfg := "[relay]\nenabled = true\nlicense_keys = [\"L\"]\n[[relay.app]]\nkey = \"Bitrix24\"\nfcm = \"android\"\n"
	if err := os.WriteFile(filepath.Join(dir, "pushpull.toml"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	out, code := runMain(t, dir, "PUSHPULL_CONFIG=pushpull.toml", "PUSHPULL_API_ADDR=127.0.0.1:0", "PUSHPULL_CLIENT_ADDR=127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "relay.app[0].fcm") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
}
