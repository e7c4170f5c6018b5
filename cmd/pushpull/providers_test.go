package main

import (
	"context"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers/fake"
)

// TestAPNsCAFile: with [apns] ca_file naming the fake's CA, the real
// binary sends to an APNs host whose certificate the system does not
// trust (a TLS-inspecting proxy in production), token auth included.
func TestAPNsCAFile(t *testing.T) {
	dir := t.TempDir()
	f, err := fake.NewAPNs(fake.APNsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	f.AddKey("KEY1234567", "TEAM123456", pub)
	write := func(name string, b []byte) {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("key.p8", keyPEM)
	write("ca.pem", pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw}))
	write("pushpull.toml", []byte(`[apns]
production_url = "`+f.URL()+`"
ca_file = "ca.pem"
[[apns.app]]
id = "ios"
topic = "com.example.app"
key_file = "key.p8"
key_id = "KEY1234567"
team_id = "TEAM123456"
`))
	p := startGateway(t, dir, "PUSHPULL_CONFIG=pushpull.toml")
	key, err := os.ReadFile(filepath.Join(dir, "data", "api_key"))
	if err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("ab", 32)
	body := `{"notifications":[{"devices":[{"platform":"apns","token":"` + token + `","app_id":"ios"}],"title":"t","body":"b"}]}`
	req, _ := http.NewRequest(http.MethodPost, "http://"+p.api+"/api/v1/push", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(key)))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusAccepted {
		t.Fatalf("push: %d %s", res.StatusCode, b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := f.WaitDelivered(ctx, 1); err != nil {
		t.Fatalf("APNs got nothing (is the CA trusted?): %v", err)
	}
	if got := f.Received()[0]; got.Token != token || got.Topic != "com.example.app" {
		t.Errorf("APNs got %+v", got)
	}
}
