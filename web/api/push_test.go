package api

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/apierr"
)

// pushAPI is the publisher's push endpoints over real stores, the real
// provider clients and the fakes.
type pushAPI struct {
	*testAPI
	svc  *push.Service
	q    *queue.Queue
	apns *fake.APNs
	fcm  *fake.FCM
}

func newPushAPI(t *testing.T, limits Limits) *pushAPI {
	t.Helper()
	db, q, reg := newStores(t)
	ap, fa := newFakeAPNs(t, "ios")
	ff, err := fake.NewFCM(fake.FCMOptions{NoAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ff.Close)
	fp, err := fcm.New(context.Background(), fcm.Options{
		Apps:     []fcm.App{{ID: "android", ProjectID: "proj"}},
		Endpoint: ff.URL() + "/v1", HTTPClient: &http.Client{},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fp.Close() })

	svc, err := push.New(q, reg, []providers.Provider{ap, fp}, push.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Stop(context.Background()) })
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(quietLog(), MapError)
	e.Use(middleware.BodyLimit("1M"))
	RegisterPush(e.Group("/api/v1", RequireKey(NewKeys([]string{testKey}))), svc, limits, quietLog())
	hs := httptest.NewServer(e)
	t.Cleanup(hs.Close)
	base := &testAPI{t: t, db: db, e: e, client: hs.Client(), url: hs.URL}
	return &pushAPI{testAPI: base, svc: svc, q: q, apns: fa, fcm: ff}
}

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func (a *pushAPI) register(d devices.Device) {
	a.t.Helper()
	reg, err := devices.Open(a.db, devices.Options{PurgeInterval: -1})
	if err != nil {
		a.t.Fatal(err)
	}
	defer reg.Close()
	if _, err := reg.Register(context.Background(), d); err != nil {
		a.t.Fatal(err)
	}
}

func apnsTok(i int) string { return fmt.Sprintf("%064x", 0xb0000+i) }

func results(t *testing.T, m map[string]any) []map[string]any {
	t.Helper()
	rs, _ := m["results"].([]any)
	out := make([]map[string]any, len(rs))
	for i, r := range rs {
		out[i], _ = r.(map[string]any)
	}
	return out
}

// TestPushAPIEndToEnd: POST /push -> 202 after commit -> dispatcher ->
// fakes, payload checked, then GET /push/:id shows every job delivered.
func TestPushAPIEndToEnd(t *testing.T) {
	t.Parallel()
	a := newPushAPI(t, Limits{})
	a.register(devices.Device{User: "42", Platform: "apns", Token: apnsTok(1), AppID: "ios"})
	a.register(devices.Device{User: "42", Platform: "fcm", Token: "fcm-tok-1", AppID: "android"})
	if err := a.svc.Start(); err != nil {
		t.Fatal(err)
	}
	code, m := a.call("POST", "/api/v1/push", `{"notifications":[{"users":["42","44"],"title":"Anna","body":"Hi there",
		"data":{"chat":17},"sub_tag":"IM_MESS_17","expiry":600,"idempotency_key":"k1"}]}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST /push = %d %v", code, m)
	}
	r := results(t, m)[0]
	id, _ := r["id"].(string)
	if r["jobs"] != float64(2) || fmt.Sprint(r["no_device"]) != "[44]" || !strings.HasPrefix(id, "n_") {
		t.Fatalf("result %v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := a.apns.WaitDelivered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if err := a.fcm.WaitDelivered(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if p := string(a.apns.Received()[0].Payload); !strings.Contains(p, `"title":"Anna"`) || !strings.Contains(p, `"chat":17`) {
		t.Errorf("APNs payload %s", p)
	}
	if msg := string(a.fcm.Received()[0].Raw); !strings.Contains(msg, `"chat":"17"`) || !strings.Contains(msg, `"title":"Anna"`) {
		t.Errorf("FCM message %s", msg)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, st := a.call("GET", "/api/v1/push/"+id, nil)
		states, _ := st["states"].(map[string]any)
		if code == http.StatusOK && states["delivered"] == float64(2) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("status %d %v", code, st)
		}
		time.Sleep(5 * time.Millisecond) // polling a condition with a deadline
	}
	// Same idempotency key: same answer, nothing sent again.
	code, m2 := a.call("POST", "/api/v1/push", `{"notifications":[{"users":["42"],"body":"again","idempotency_key":"k1"}]}`)
	if code != http.StatusAccepted || results(t, m2)[0]["id"] != id {
		t.Errorf("duplicate: %d %v", code, m2)
	}
}

func TestPushAPIValidation(t *testing.T) {
	t.Parallel()
	a := newPushAPI(t, Limits{MaxBodyBytes: 1 << 20, MaxItems: 2, MaxRecipients: 3})
	a.register(devices.Device{User: "1", Platform: "apns", Token: apnsTok(9), AppID: "ios"})
	bigData := `{"x":"` + strings.Repeat("a", 4200) + `"}`
	cases := []struct {
		name, body, code, field string
	}{
		{"empty", `{"notifications":[]}`, "invalid_argument", "notifications"},
		{"items", `{"notifications":[{"users":["1"]},{"users":["1"]},{"users":["1"]}]}`, "invalid_argument", "notifications"},
		{"recipients", `{"notifications":[{"users":["1","2","3","4"]}]}`, "invalid_argument", "notifications[0].users"},
		{"no recipients", `{"notifications":[{"body":"x"}]}`, "invalid_argument", "notifications[0].users"},
		{"push type", `{"notifications":[{"users":["1"]},{"users":["1"],"push_type":"loud"}]}`, "invalid_argument", "notifications[1].push_type"},
		{"priority", `{"notifications":[{"users":["1"],"priority":"max"}]}`, "invalid_argument", "notifications[0].priority"},
		{"send_at", `{"notifications":[{"users":["1"],"send_at":"tomorrow"}]}`, "invalid_argument", "notifications[0].send_at"},
		{"both", `{"notifications":[{"users":["1"],"send_at":"2026-01-01T00:00:00Z","delay":5}]}`, "invalid_argument", "notifications[0].delay"},
		{"delay", `{"notifications":[{"users":["1"],"delay":-1}]}`, "invalid_argument", "notifications[0].delay"},
		{"expiry", `{"notifications":[{"users":["1"],"expiry":99999999}]}`, "invalid_argument", "notifications[0].expiry"},
		{"unknown field", `{"notifications":[{"users":["1"],"titel":"x"}]}`, "invalid_argument", "titel"},
		{"device token", `{"notifications":[{"devices":[{"platform":"apns","token":"zz"}]}]}`, "invalid_argument", "notifications[0].devices[0].token"},
		{"data", `{"notifications":[{"users":["1"],"data":[1]}]}`, "invalid_argument", "notifications[0].data"},
		{"too large", `{"notifications":[{"users":["1"]},{"users":["1"],"data":` + bigData + `}]}`, "payload_too_large", "notifications[1]"},
	}
	for _, c := range cases {
		code, m := a.call("POST", "/api/v1/push", c.body)
		gotCode, gotField := errField(m)
		if gotCode != c.code || gotField != c.field {
			t.Errorf("%s: %d %s %q; want %s %q (%v)", c.name, code, gotCode, gotField, c.code, c.field, m)
		}
	}
	// A batch with one bad item stores nothing, not even its good items.
	if st, err := a.q.Stats(); err != nil || st.Due+st.Deferred != 0 {
		t.Errorf("rejected batches stored jobs: %+v %v", st, err)
	}
}

func TestPushAPIStatusAndCancel(t *testing.T) {
	t.Parallel()
	a := newPushAPI(t, Limits{})
	a.register(devices.Device{User: "42", Platform: "apns", Token: apnsTok(1), AppID: "ios"})
	a.register(devices.Device{User: "43", Platform: "apns", Token: apnsTok(2), AppID: "ios"})
	code, m := a.call("POST", "/api/v1/push", `{"notifications":[{"users":["42","43"],"body":"x","tag":"IM","delay":60}]}`)
	if code != http.StatusAccepted {
		t.Fatalf("%d %v", code, m)
	}
	id := results(t, m)[0]["id"].(string)
	code, st := a.call("GET", "/api/v1/push/"+id, nil)
	jobs, _ := st["jobs"].([]any)
	if code != http.StatusOK || len(jobs) != 2 || jobs[0].(map[string]any)["state"] != "queued" || jobs[0].(map[string]any)["next_attempt"] == nil {
		t.Fatalf("status %d %v", code, st)
	}
	code, m = a.call("POST", "/api/v1/push/cancel", `{"users":["42"],"tag":"IM"}`)
	if code != http.StatusOK || m["cancelled"] != float64(1) {
		t.Fatalf("cancel %d %v", code, m)
	}
	_, st = a.call("GET", "/api/v1/push/"+id, nil)
	if states := st["states"].(map[string]any); states["cancelled"] != float64(1) || states["queued"] != float64(1) {
		t.Errorf("states %v", states)
	}
	code, m = a.call("POST", "/api/v1/push/cancel", `{"users":["42"]}`)
	if c, f := errField(m); code != http.StatusBadRequest || c != "invalid_argument" || f != "tag" {
		t.Errorf("cancel without tag: %d %v", code, m)
	}
	code, m = a.call("GET", "/api/v1/push/n_unknown", nil)
	if c, _ := errField(m); code != http.StatusNotFound || c != "not_found" {
		t.Errorf("unknown id: %d %v", code, m)
	}
}
