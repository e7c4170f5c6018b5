package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

const (
	liveTok = "0000000000000000000000000000000000000000000000000000000000000a01"
	deadTok = "0000000000000000000000000000000000000000000000000000000000000a02"
)

// exercise makes every metric family move once: a live connection gets an
// event, a slow one is cut, a long poll is held, one push is delivered and
// one token is declared invalid by the provider.
func exercise(t *testing.T, g *gateway) {
	t.Helper()
	ctx := context.Background()
	tr := &testTransport{}
	c := g.hub.NewConn(tr, hub.Native, hub.ConnInfo{User: "1", Transport: hub.TransportWebSocket, Protocol: hub.ProtocolBitrixV4})
	t.Cleanup(func() { c.Close(1000, "") })
	if _, err := g.hub.Subscribe(c, []string{"user:1"}, ""); err != nil {
		t.Fatal(err)
	}
	c.Start(nil)
	g.hub.Publish([]string{"user:1"}, &hub.Event{ModuleID: "im", Command: "message", Expiry: time.Minute})

	slow := g.hub.NewConn(&testTransport{}, hub.Native, hub.ConnInfo{User: "2"}) // never started
	if _, err := g.hub.Subscribe(slow, []string{"user:2"}, ""); err != nil {
		t.Fatal(err)
	}
	for range 5 { // QueueSize 4: the fifth overflows
		g.hub.Publish([]string{"user:2"}, &hub.Event{ModuleID: "im", Command: "x"})
	}
	<-slow.Done()
	done := g.hub.Track(hub.ConnInfo{Transport: hub.TransportLongPoll})
	t.Cleanup(done)

	for i, tok := range []string{liveTok, deadTok} {
		if _, err := g.reg.Register(ctx, devices.Device{User: "7", Platform: devices.PlatformAPNs, AppID: testApp, Token: tok, Name: string(rune('a' + i))}); err != nil {
			t.Fatal(err)
		}
	}
	g.apns.Script(deadTok, fake.Behavior{Status: 410, Reason: fake.APNsUnregistered})
	if err := g.push.Start(); err != nil {
		t.Fatal(err)
	}
	if _, err := g.push.Push(ctx, []push.Request{{Users: []string{"7"}, Notification: providers.Notification{Body: "hi"}}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "both pushes settled", func() bool {
		st := g.push.ProviderStats()
		qs, err := g.q.Stats()
		return len(st) == 1 && st[0].Delivered == 1 && st[0].TokenInvalid == 1 &&
			err == nil && qs.Delivered == 1 && qs.InFlight == 0
	})
	e := echo.New()
	e.Use(g.m.Middleware("api"))
	e.POST("/api/v1/events", func(c echo.Context) error { return c.NoContent(http.StatusAccepted) })
	e.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodPost, "/api/v1/events", nil))
	waitFor(t, "the live event written", func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return tr.frames == 1
	})
}

// TestEveryFamilyMoves: each metric family changes when its event happens,
// with real components behind it.
func TestEveryFamilyMoves(t *testing.T) {
	t.Parallel()
	g := newGateway(t, hub.Options{QueueSize: 4})
	before, _ := scrape(t, g.m)
	exercise(t, g)
	after, _ := scrape(t, g.m)

	want := map[string]float64{
		`pushpull_events_published_total`:                                                                    6,
		`pushpull_events_delivered_total{via="live"}`:                                                        5, // 1 + 4 queued on the slow one
		`pushpull_events_dropped_total{reason="slow_consumer"}`:                                              5,
		`pushpull_slow_consumers_total`:                                                                      1,
		`pushpull_connections{protocol="bitrix_v4",transport="websocket"}`:                                   1,
		`pushpull_connections{protocol="native",transport="websocket"}`:                                      0, // the slow one, closed
		`pushpull_sessions_opened_total{protocol="native",transport="websocket"}`:                            1,
		`pushpull_connections{protocol="native",transport="longpoll"}`:                                       1,
		`pushpull_history_events`:                                                                            1, // the slow user's events had no expiry
		`pushpull_pushes_total{app="Bitrix24",platform="apns",reason="none",result="delivered"}`:             1,
		`pushpull_pushes_total{app="Bitrix24",platform="apns",reason="Unregistered",result="token_invalid"}`: 1,
		`pushpull_tokens_removed_total{platform="apns",reason="Unregistered"}`:                               1,
		`pushpull_provider_send_duration_seconds{platform="apns"}`:                                           1,
		`pushpull_provider_paused{platform="apns"}`:                                                          0,
		`pushpull_queue_jobs{state="due"}`:                                                                   0,
		`pushpull_queue_jobs_total{outcome="delivered"}`:                                                     1,
		`pushpull_ready`:                   1,
		`pushpull_db_probe_commit_seconds`: 1,
	}
	for k, v := range want {
		got, ok := after[k]
		if !ok {
			t.Errorf("%s missing from the scrape", k)
			continue
		}
		if got != v {
			t.Errorf("%s = %v, want %v (before: %v)", k, got, v, before[k])
		}
	}
	for _, k := range []string{`pushpull_provider_last_success_timestamp_seconds{platform="apns"}`, `pushpull_db_write_seconds_total`, `pushpull_db_file_bytes`} {
		if after[k] <= 0 || after[k] == before[k] && k != `pushpull_db_file_bytes` {
			t.Errorf("%s did not move: %v -> %v", k, before[k], after[k])
		}
	}
	if _, ok := after[`pushpull_provider_last_failure_timestamp_seconds{platform="apns"}`]; ok {
		t.Error("last failure exported with no failure")
	}
}

func TestRequestMetricsAndHandler(t *testing.T) {
	t.Parallel()
	m := New("v-test")
	e := echo.New()
	e.Use(m.Middleware("api"))
	e.GET("/metrics", m.Handler())
	e.GET("/api/v1/things/:id", func(c echo.Context) error { return c.String(200, "ok") })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for _, p := range []string{"/api/v1/things/a", "/api/v1/things/b", "/nowhere"} {
		res, err := http.Get(srv.URL + p)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
	}
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	text := string(b)
	for _, want := range []string{
		`pushpull_build_info{version="v-test"} 1`,
		`pushpull_http_request_duration_seconds_count{listener="api",method="GET",route="/api/v1/things/:id",status="200"} 2`,
		`pushpull_http_request_duration_seconds_count{listener="api",method="GET",route="unmatched",status="404"} 1`,
		`go_goroutines `,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}

func TestPausedAndFailureFromStats(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	until := now.Add(time.Minute)
	m := New("v")
	m.Registry.MustRegister(&pushCollector{now: func() time.Time { return now }, stats: func() []push.ProviderStats {
		return []push.ProviderStats{{Platform: "fcm", PausedUntil: &until, LastFailure: &now,
			Latency: push.Histogram{Bounds: []float64{.1, 1}, Counts: []uint64{1, 2, 3}, Count: 6, Sum: 9}}}
	}})
	s, _ := scrape(t, m)
	if s[`pushpull_provider_paused{platform="fcm"}`] != 1 || s[`pushpull_provider_last_failure_timestamp_seconds{platform="fcm"}`] != 1.8e9 {
		t.Errorf("scrape %v", s)
	}
	if s[`pushpull_provider_send_duration_seconds{platform="fcm"}`] != 6 {
		t.Errorf("histogram count %v", s[`pushpull_provider_send_duration_seconds{platform="fcm"}`])
	}
}

func TestClusterMetrics(t *testing.T) {
	t.Parallel()
	m := New("test")
	st := ClusterStats{EventsApplied: 7, EventsStale: 1, EventsCorrupt: 2, Connected: true, Nodes: 3}
	var mu sync.Mutex
	m.WatchCluster(func() ClusterStats { mu.Lock(); defer mu.Unlock(); return st })
	got, _ := scrape(t, m)
	for k, v := range map[string]float64{
		`pushpull_cluster_events_applied_total{result="applied"}`: 7,
		`pushpull_cluster_events_applied_total{result="stale"}`:   1,
		`pushpull_cluster_events_applied_total{result="corrupt"}`: 2,
		`pushpull_cluster_nats_connected`:                         1,
		`pushpull_cluster_nodes`:                                  3,
	} {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	mu.Lock()
	st.Connected, st.Nodes = false, 2
	mu.Unlock()
	if got, _ := scrape(t, m); got[`pushpull_cluster_nats_connected`] != 0 || got[`pushpull_cluster_nodes`] != 2 {
		t.Errorf("after a disconnect: %v", got)
	}
}
