package static

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/web/apierr"
)

func TestServesClientAndDemo(t *testing.T) {
	e := echo.New()
	Register(e)
	for path, want := range map[string]string{
		"/pullclient.js":  "class PullClient",
		"/pullclient.mjs": "export const PullClient",
		"/":               "<title>pushpull",
	} {
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
		if rec.Code != 200 || !strings.Contains(rec.Body.String(), want) {
			t.Errorf("%s: %d, body lacks %q", path, rec.Code, want)
		}
		if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "text/") {
			t.Errorf("%s: content type %q", path, ct)
		}
	}
}

func TestDemoRoutes(t *testing.T) {
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(slog.New(slog.DiscardHandler))
	var sent []string
	RegisterDemo(e, DemoDeps{
		Mint: func(user string) (string, error) { return "tok-" + user, nil },
		Send: func(_ context.Context, user, text string) error { sent = append(sent, user+":"+text); return nil },
	})
	post := func(path, body string) *httptest.ResponseRecorder {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		e.ServeHTTP(rec, req)
		return rec
	}
	if rec := post("/demo/token", `{"user":"42"}`); rec.Code != 200 || !strings.Contains(rec.Body.String(), "tok-42") {
		t.Fatalf("token: %d %s", rec.Code, rec.Body.String())
	}
	if rec := post("/demo/send", `{"user":"42","text":"hi"}`); rec.Code != 202 || len(sent) != 1 || sent[0] != "42:hi" {
		t.Fatalf("send: %d %v", rec.Code, sent)
	}
	if rec := post("/demo/token", `{}`); rec.Code != 400 {
		t.Fatalf("no user: %d", rec.Code)
	}
}
