package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/prometheus/client_golang/prometheus"
)

func val(p *float64) float64 {
	if p == nil {
		return -1
	}
	return *p
}

// TestStatsFollowTraffic drives real traffic through the admin API and a
// real WebSocket and checks the snapshot moves with it.
func TestStatsFollowTraffic(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.loggedIn()

	before := e.stats(c)
	if before.Connections == nil || *before.Connections != 0 || before.Queue == nil || before.EventRequests == nil {
		t.Fatalf("initial snapshot: %+v", before)
	}

	tok, _, err := e.tokens.Mint("42", 0, nil, "test")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.client, "http")+"/sub/ws?token="+tok, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	if _, _, err := ws.Read(ctx); err != nil { // welcome
		t.Fatal(err)
	}
	eventually(t, "one connection", func() bool { return val(e.stats(c).Connections) == 1 })

	for i := range 3 {
		ev := map[string]any{"events": []map[string]any{{"users": []string{"42"}, "module_id": "t", "command": "c", "params": map[string]int{"n": i}}}}
		if status, m := e.call(c, "POST", "/admin/api/v1/events", ev, true); status != http.StatusAccepted {
			t.Fatalf("event: %d %v", status, m)
		}
		if _, _, err := ws.Read(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := e.stats(c)
	if val(after.EventRequests)-val(before.EventRequests) != 3 {
		t.Errorf("event requests %v → %v, want +3", val(before.EventRequests), val(after.EventRequests))
	}
	if after.EventsPublished != nil && *after.EventsPublished <= val(before.EventsPublished) {
		t.Errorf("events published did not move: %v → %v", val(before.EventsPublished), *after.EventsPublished)
	}
	if after.Time <= 0 || after.HTTPRequests == nil || *after.HTTPRequests < 3 {
		t.Errorf("snapshot: %+v", after)
	}
	// The admin's own polling is not counted as API traffic.
	again := e.stats(c)
	if val(again.HTTPRequests) != val(after.HTTPRequests) {
		t.Errorf("stats polling counted as API requests: %v → %v", val(after.HTTPRequests), val(again.HTTPRequests))
	}
	ws.Close(websocket.StatusNormalClosure, "")
	eventually(t, "no connection", func() bool { return val(e.stats(c).Connections) == 0 })
}

// TestDeadLetterRoundTrip makes a dead letter (a push with no provider),
// looks it up by notification id, retries and deletes it — all through
// the session-guarded API the dashboard uses.
func TestDeadLetterRoundTrip(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.loggedIn()
	dev := map[string]any{"user": "42", "device_id": "phone", "platform": "apns", "token": strings.Repeat("ab", 32)}
	if status, m := e.call(c, "POST", "/admin/api/v1/devices", dev, true); status != http.StatusCreated {
		t.Fatalf("device: %d %v", status, m)
	}
	_, m := e.call(c, "GET", "/admin/api/v1/users/42/devices", nil, false)
	if ds, _ := m["devices"].([]any); len(ds) != 1 {
		t.Fatalf("devices: %v", m)
	}

	status, m := e.call(c, "POST", "/admin/api/v1/push", map[string]any{"notifications": []map[string]any{{"users": []string{"42"}, "title": "t", "body": "b"}}}, true)
	if status != http.StatusAccepted {
		t.Fatalf("push: %d %v", status, m)
	}
	id := m["results"].([]any)[0].(map[string]any)["id"].(string)
	dead := func() float64 { return e.stats(c).Queue["dead"] }
	eventually(t, "a dead letter", func() bool { return dead() == 1 })

	_, st := e.call(c, "GET", "/admin/api/v1/push/"+id, nil, false)
	if states, _ := st["states"].(map[string]any); states["dead"] != float64(1) {
		t.Fatalf("push status: %v", st)
	}
	_, list := e.call(c, "GET", "/admin/api/v1/queue/dead", nil, false)
	jobs, _ := list["jobs"].([]any)
	if len(jobs) != 1 || !strings.Contains(jobs[0].(map[string]any)["reason"].(string)+jobs[0].(map[string]any)["last_error"].(string), "provider") {
		t.Fatalf("dead letters: %v", list)
	}
	jobID := jobs[0].(map[string]any)["id"].(string)
	if status, m := e.call(c, "POST", "/admin/api/v1/queue/dead/retry", map[string]any{"ids": []string{jobID}}, true); status != http.StatusOK || m["retried"] != float64(1) {
		t.Fatalf("retry: %d %v", status, m)
	}
	// Still no provider: it dies again, and can then be deleted.
	eventually(t, "the retried job to die again", func() bool {
		_, l := e.call(c, "GET", "/admin/api/v1/queue/dead", nil, false)
		js, _ := l["jobs"].([]any)
		return len(js) == 1
	})
	_, list = e.call(c, "GET", "/admin/api/v1/queue/dead", nil, false)
	jobID = list["jobs"].([]any)[0].(map[string]any)["id"].(string)
	if status, m := e.call(c, "DELETE", "/admin/api/v1/queue/dead", map[string]any{"ids": []string{jobID}}, true); status != http.StatusOK || m["deleted"] != float64(1) {
		t.Fatalf("delete: %d %v", status, m)
	}
	if d := dead(); d != 0 {
		t.Fatalf("dead after delete: %v", d)
	}
}

func TestSnapshotReadsDefensively(t *testing.T) {
	t.Parallel()
	now := time.UnixMilli(1_700_000_000_123)
	empty := snapshot(nil, now)
	if empty.Time != now.UnixMilli() || empty.Connections != nil || empty.EventsPublished != nil || empty.Queue != nil {
		t.Fatalf("nil gatherer: %+v", empty)
	}

	r := prometheus.NewRegistry()
	conns := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "pushpull_connections"}, []string{"transport"})
	conns.WithLabelValues("ws").Set(3)
	conns.WithLabelValues("longpoll").Set(2)
	pub := prometheus.NewCounter(prometheus.CounterOpts{Name: "pushpull_events_published_total"})
	pub.Add(7)
	pushes := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "pushpull_pushes_total"}, []string{"platform", "app", "result"})
	pushes.WithLabelValues("apns", "a", "delivered").Add(10)
	pushes.WithLabelValues("fcm", "b", "delivered").Add(5)
	pushes.WithLabelValues("fcm", "b", "rejected").Add(2)
	pushes.WithLabelValues("fcm", "b", "retry").Add(1)
	pushes.WithLabelValues("fcm", "b", "paused").Add(100)
	reqs := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "pushpull_http_request_duration_seconds"}, []string{"route", "method", "status"})
	reqs.WithLabelValues("/api/v1/events", "POST", "202").Observe(.01)
	reqs.WithLabelValues("/api/v1/events", "POST", "400").Observe(.01)
	reqs.WithLabelValues("/api/v1/push", "POST", "503").Observe(.01)
	reqs.WithLabelValues("/admin/api/stats", "GET", "200").Observe(.01)
	r.MustRegister(conns, pub, pushes, reqs)

	s := snapshot(r, now)
	switch {
	case val(s.Connections) != 5 || s.ConnectionsBy["ws"] != 3 || s.ConnectionsBy["longpoll"] != 2:
		t.Errorf("connections: %v %v", val(s.Connections), s.ConnectionsBy)
	case val(s.EventsPublished) != 7 || s.EventsDelivered != nil:
		t.Errorf("events: %v %v", val(s.EventsPublished), s.EventsDelivered)
	case val(s.PushesDelivered) != 15 || val(s.PushesFailed) != 3 || s.Pushes["paused"] != 100:
		t.Errorf("pushes: %v %v %v", val(s.PushesDelivered), val(s.PushesFailed), s.Pushes)
	case val(s.HTTPRequests) != 3 || val(s.HTTPErrors) != 1 || val(s.HTTPRejected) != 1 || val(s.EventRequests) != 1:
		t.Errorf("http: %v %v %v %v", val(s.HTTPRequests), val(s.HTTPErrors), val(s.HTTPRejected), val(s.EventRequests))
	}
}

// BenchmarkStats measures one /admin/api/stats answer (gather and encode)
// over a fully wired registry: queue, hub, push, bbolt, Go and process
// collectors.
func BenchmarkStats(b *testing.B) {
	e := newEnv(b, Options{})
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(snapshot(e.metrics, now)); err != nil {
			b.Fatal(err)
		}
	}
}
