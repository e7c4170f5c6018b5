package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/queue"
)

func TestScrapeShowsComponentState(t *testing.T) {
	db, err := bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := queue.Open(db, queue.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	h, err := hub.New(hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if err := q.Enqueue(context.Background(), &queue.Job{Platform: "fcm", Token: "t", Payload: []byte("{}")}); err != nil {
		t.Fatal(err)
	}
	h.Publish([]string{"user:1"}, &hub.Event{ModuleID: "m", Command: "c", Expiry: 60e9})

	m := New("v-test")
	m.WatchQueue(q)
	m.WatchHub(h)
	m.WatchDB(db)
	m.WatchPush(func() []push.ProviderStats {
		return []push.ProviderStats{{Platform: "apns", Delivered: 7, TokenInvalid: 1}}
	})
	e := echo.New()
	e.Use(m.Middleware("api"))
	e.GET("/metrics", m.Handler())
	e.GET("/api/v1/things/:id", func(c echo.Context) error { return c.String(200, "ok") })
	srv := httptest.NewServer(e)
	defer srv.Close()
	for i := 0; i < 2; i++ {
		res, err := http.Get(srv.URL + "/api/v1/things/" + string(rune('a'+i)))
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
		`pushpull_queue_jobs{state="due"} 1`,
		`pushpull_queue_jobs{state="dead"} 0`,
		`pushpull_history_events 1`,
		`pushpull_connections 0`,
		`pushpull_http_request_duration_seconds_count{listener="api",method="GET",route="/api/v1/things/:id",status="200"} 2`,
		`pushpull_db_file_bytes `,
		`pushpull_db_commits_total `,
		`go_goroutines `,
		`pushpull_pushes_total{platform="apns",result="delivered"} 7`,
		`pushpull_pushes_total{platform="apns",result="token_invalid"} 1`,
		`pushpull_provider_paused{platform="apns"} 0`,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("scrape lacks %q", want)
		}
	}
}
