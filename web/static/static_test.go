package static

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/labstack/echo/v4"
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
