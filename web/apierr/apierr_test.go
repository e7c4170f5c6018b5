package apierr

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
)

func decode(t *testing.T, rec *httptest.ResponseRecorder) bodyError {
	t.Helper()
	var b body
	if err := json.Unmarshal(rec.Body.Bytes(), &b); err != nil {
		t.Fatalf("body %q: %v", rec.Body.String(), err)
	}
	return b.Error
}

func TestHandlerShapes(t *testing.T) {
	errNotMine := errors.New("domain: gone")
	e := echo.New()
	e.HTTPErrorHandler = Handler(slog.New(slog.NewTextHandler(io.Discard, nil)), func(err error) *Error {
		if errors.Is(err, errNotMine) {
			return New(CodeNotFound, "device not found")
		}
		return nil
	})
	e.Use(middleware.BodyLimit("10B"))
	e.POST("/invalid", func(echo.Context) error { return Invalid("events[3].users", "at most %d recipients", 10000) })
	e.POST("/limited", func(echo.Context) error {
		return &Error{Code: CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}
	})
	e.POST("/domain", func(echo.Context) error { return errNotMine })
	e.POST("/boom", func(echo.Context) error { return errors.New("secret detail") })
	e.POST("/body", func(c echo.Context) error { _, err := io.ReadAll(c.Request().Body); return err })

	cases := []struct {
		method, path, body string
		status             int
		code, field        string
	}{
		{"POST", "/invalid", "", 400, CodeInvalidArgument, "events[3].users"},
		{"POST", "/limited", "", 429, CodeRateLimited, ""},
		{"POST", "/domain", "", 404, CodeNotFound, ""},
		{"POST", "/boom", "", 500, CodeInternal, ""},
		{"GET", "/nowhere", "", 404, CodeNotFound, ""},
		{"GET", "/invalid", "", 405, CodeMethodNotAllowed, ""},
		{"POST", "/body", strings.Repeat("x", 100), 413, CodePayloadTooLarge, ""},
	}
	for _, tc := range cases {
		req := httptest.NewRequest(tc.method, tc.path, strings.NewReader(tc.body))
		rec := httptest.NewRecorder()
		e.ServeHTTP(rec, req)
		if rec.Code != tc.status {
			t.Errorf("%s %s: status %d, want %d", tc.method, tc.path, rec.Code, tc.status)
			continue
		}
		got := decode(t, rec)
		if got.Code != tc.code || got.Field != tc.field || got.Message == "" {
			t.Errorf("%s %s: got %+v", tc.method, tc.path, got)
		}
		if strings.Contains(rec.Body.String(), "secret detail") {
			t.Errorf("%s: internal cause leaked: %s", tc.path, rec.Body.String())
		}
		if tc.status == 429 && rec.Header().Get("Retry-After") != "2" {
			t.Errorf("Retry-After = %q", rec.Header().Get("Retry-After"))
		}
	}
	if s := (&Error{Code: "weird"}).Status(); s != http.StatusInternalServerError {
		t.Errorf("unknown code status %d", s)
	}
}

func TestWithField(t *testing.T) {
	e := Invalid("token", "bad").WithField("notifications[2]")
	if e.Field != "notifications[2].token" {
		t.Fatal(e.Field)
	}
	if e2 := New(CodeInvalidArgument, "x").WithField("events[0]"); e2.Field != "events[0]" {
		t.Fatal(e2.Field)
	}
}
