package api

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/web/apierr"
)

// GET /api/v1/queue shows each configured provider's last success and
// failure (token redacted), its answers per app and reason and its send
// latency, in the shape openapi.json documents.
func TestQueueShowsProviderHealth(t *testing.T) {
	t.Parallel()
	log := slog.New(slog.DiscardHandler)
	_, q, reg := newStores(t)
	ap, fa := newFakeAPNs(t, "app1")
	ps, err := push.New(q, reg, []providers.Provider{ap}, push.Options{Logger: log, MaxIdle: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = ps.Stop(ctx)
	})

	ctx := context.Background()
	okTok, badTok := strings.Repeat("a", 64), strings.Repeat("b", 64)
	for _, tok := range []string{okTok, badTok} {
		if _, err := reg.Register(ctx, devices.Device{User: "1", Platform: devices.PlatformAPNs, AppID: "app1", Token: tok}); err != nil {
			t.Fatal(err)
		}
	}
	fa.Script(badTok, fake.Behavior{Status: 400, Reason: "BadTopic"})
	if err := ps.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := ps.Push(ctx, []push.Request{{Users: []string{"1"}, Notification: providers.Notification{Body: "x"}}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for st := ps.ProviderStats(); st[0].Delivered+st[0].Rejected < 2; st = ps.ProviderStats() {
		if time.Now().After(deadline) {
			t.Fatalf("pushes not answered: %+v", st)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}

	s := &Server{Queue: q, Devices: reg, Push: ps, Logger: log}
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(log, MapError)
	s.registerQueue(e.Group("/api/v1"))
	srv := httptest.NewServer(e)
	t.Cleanup(srv.Close)
	res, err := http.Get(srv.URL + "/api/v1/queue")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(res.Body)
	res.Body.Close()
	var body struct {
		Providers []map[string]json.RawMessage `json:"providers"`
	}
	if err := json.Unmarshal(raw, &body); err != nil || res.StatusCode != 200 || len(body.Providers) != 1 {
		t.Fatalf("%d %s (%v)", res.StatusCode, raw, err)
	}
	p := body.Providers[0]
	for _, k := range []string{"last_success", "last_failure", "last_error", "results", "send_latency"} {
		if _, ok := p[k]; !ok {
			t.Errorf("provider stats lack %q: %s", k, raw)
		}
	}
	var lastErr string
	_ = json.Unmarshal(p["last_error"], &lastErr)
	if !strings.Contains(lastErr, "BadTopic") || strings.Contains(lastErr, badTok) {
		t.Errorf("last_error %q", lastErr)
	}
	var results []push.ResultCount
	_ = json.Unmarshal(p["results"], &results)
	want := map[push.ResultCount]bool{
		{AppID: "app1", Result: "delivered", Reason: "none", Count: 1}:    true,
		{AppID: "app1", Result: "rejected", Reason: "BadTopic", Count: 1}: true,
	}
	if len(results) != 2 || !want[results[0]] || !want[results[1]] {
		t.Errorf("results %+v", results)
	}

	// Every field answered is documented on ProviderStats in openapi.json.
	var doc struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]json.RawMessage `json:"properties"`
			} `json:"schemas"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		t.Fatal(err)
	}
	props := doc.Components.Schemas["ProviderStats"].Properties
	for k := range p {
		if _, ok := props[k]; !ok {
			t.Errorf("field %q of a provider is not in openapi.json ProviderStats", k)
		}
	}
}
