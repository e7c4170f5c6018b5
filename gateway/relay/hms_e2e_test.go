package relay_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/relay"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/hms"
)

// TestHuaweiFrameThroughHMS sends a mode-6 frame through the real HMS
// provider to the fake: the app must get the module's data string as is.
func TestHuaweiFrameThroughHMS(t *testing.T) {
	t.Parallel()
	data := `{"contentTitle":"Anna","contentText":"Hi \u0026 bye","badge":2,"messageParams":{"params":"{\u0022a\u0022:1}","target":"abc"},"category":null,"sound":"default"}`
	payload, _ := json.Marshal(map[string]any{"message": map[string]any{
		"data": data, "android": map[string]string{"ttl": "7200"}, "token": []string{"hw-token"}}})
	frame := base64.StdEncoding.EncodeToString([]byte("Content-type: application/json\r\nContent-length: " +
		strconv.Itoa(len(payload)) + "\r\n\r\n" + string(payload)))
	p, err := relay.NewParser(relay.Options{})
	if err != nil {
		t.Fatal(err)
	}
	b := p.Parse(";6;tkey=com.example.hw;h=portal.tld;" + frame)
	if len(b.Frames) != 1 {
		t.Fatalf("skips %v", b.Skipped)
	}
	f := b.Frames[0]

	srv, err := fake.NewHMS(fake.HMSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	srv.AddClient("1001", "sec", "1001")
	prov, err := hms.New(hms.Options{Endpoint: srv.URL(), TokenURL: srv.TokenURL(), HTTPClient: srv.Client(),
		Apps: []hms.App{{ID: f.AppKey, ClientID: "1001", ClientSecret: "sec"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer prov.Close()
	res := prov.Send(context.Background(), []providers.Message{{
		Target:       providers.Target{ID: "j1", Platform: f.Platform, AppID: f.AppKey, Token: f.Token},
		Notification: f.Notification}})
	if res[0].Class != providers.Delivered {
		t.Fatalf("result %+v", res[0])
	}
	got := srv.Received()[0].Message
	if got["data"] != data {
		t.Errorf("data\n got %v\nwant %s", got["data"], data)
	}
	if _, ok := got["android"].(map[string]any)["notification"]; ok {
		t.Error("a system notification was added to a data message")
	}
	ttl := got["android"].(map[string]any)["ttl"].(string)
	if d, _ := time.ParseDuration(ttl); d < 7190*time.Second || d > 7200*time.Second {
		t.Errorf("ttl = %s", ttl)
	}
}
