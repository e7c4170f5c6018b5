package api

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/web/apierr"
)

func keyServer(keys *Keys) *echo.Echo {
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(slog.New(slog.NewTextHandler(io.Discard, nil)))
	g := e.Group("/api/v1", RequireKey(keys))
	g.GET("/x", func(c echo.Context) error { return c.String(200, "ok") })
	return e
}

func TestRequireKey(t *testing.T) {
	keys := NewKeys([]string{"first-key-0123456789", "second-key-0123456789", ""})
	e := keyServer(keys)
	cases := []struct {
		name   string
		header map[string]string
		status int
	}{
		{"none", nil, 401},
		{"bearer first", map[string]string{"Authorization": "Bearer first-key-0123456789"}, 200},
		{"bearer lowercase scheme", map[string]string{"Authorization": "bearer second-key-0123456789"}, 200},
		{"x-api-key", map[string]string{"X-API-Key": "second-key-0123456789"}, 200},
		{"wrong", map[string]string{"X-API-Key": "second-key-012345678"}, 401},
		{"prefix of a key", map[string]string{"Authorization": "Bearer first"}, 401},
		{"basic scheme", map[string]string{"Authorization": "Basic first-key-0123456789"}, 401},
		{"empty bearer", map[string]string{"Authorization": "Bearer "}, 401},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
		for k, v := range tc.header {
			req.Header.Set(k, v)
		}
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s: status %d, want %d", tc.name, rec.Code, tc.status)
		}
		if tc.status == 401 && !strings.Contains(rec.Body.String(), `"unauthenticated"`) {
			t.Errorf("%s: body %s", tc.name, rec.Body.String())
		}
	}
	// Keys can be replaced at run time.
	keys.Set([]string{"third-key-0123456789"})
	req := httptest.NewRequest(http.MethodGet, "/api/v1/x", nil)
	req.Header.Set("X-API-Key", "first-key-0123456789")
	rec := httptest.NewRecorder()
	e.ServeHTTP(rec, req)
	if rec.Code != 401 {
		t.Fatalf("removed key still accepted: %d", rec.Code)
	}
	if !keys.Valid("third-key-0123456789") || keys.Valid("") {
		t.Fatal("Valid after Set")
	}
}
