package admin

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/web/api"
)

func TestLoginWrongKeyShowsFormError(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.browser()
	res, err := c.PostForm(e.url+"/admin/login", url.Values{"key": {"wrong-key"}})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("status %d, want 401", res.StatusCode)
	}
	if !strings.Contains(string(body), "Invalid API key") || !strings.Contains(string(body), `name="key"`) {
		t.Fatalf("answer is not the login form with an error:\n%s", body)
	}
	if len(res.Cookies()) != 0 {
		t.Fatalf("cookie set on a failed login: %v", res.Cookies())
	}
	if e.admin.Sessions() != 0 {
		t.Fatal("a failed login opened a session")
	}
}

func TestLoginSetsSessionCookieThatReachesTheAPI(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.browser()
	res := e.login(c, testKey)
	if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != "/admin/" {
		t.Fatalf("login: %d Location %q", res.StatusCode, res.Header.Get("Location"))
	}
	cks := res.Cookies()
	if len(cks) != 1 {
		t.Fatalf("cookies: %v", cks)
	}
	ck := cks[0]
	if ck.Name != CookieName || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/admin" || ck.Secure {
		t.Fatalf("cookie attributes: %+v", ck)
	}
	if strings.Contains(ck.Value, testKey) || strings.Contains(ck.Raw, testKey) || len(ck.Value) != 43 {
		t.Fatalf("cookie is not a 256-bit random id: %q", ck.Raw)
	}

	status, m := e.call(c, "GET", "/admin/api/v1/queue", nil, false)
	if status != http.StatusOK {
		t.Fatalf("queue with the session: %d %v", status, m)
	}
	if _, ok := m["dead"]; !ok {
		t.Fatalf("queue answer: %v", m)
	}
	// The dashboard page itself, not the login form.
	r, _ := c.Get(e.url + "/admin/")
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if !strings.Contains(string(page), "/admin/assets/app.js") || strings.Contains(string(page), `name="key"`) {
		t.Fatalf("GET /admin/ with a session did not serve the dashboard:\n%s", page)
	}
}

func TestWithoutSessionAPIIs401AndPageIsLoginForm(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.browser()
	for _, p := range []string{"/admin/api/v1/queue", "/admin/api/stats", "/admin/api/users/42/tags", "/admin/api/nope"} {
		status, m := e.call(c, "GET", p, nil, true)
		if status != http.StatusUnauthorized || errCode(m) != "unauthenticated" {
			t.Errorf("%s: %d %v, want 401 unauthenticated", p, status, m)
		}
	}
	// The API key itself does not open the admin API: only a session does.
	req, _ := http.NewRequest("GET", e.url+"/admin/api/v1/queue", nil)
	req.Header.Set("Authorization", "Bearer "+testKey)
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusUnauthorized {
		t.Errorf("bearer key on the admin API: %d, want 401", res.StatusCode)
	}
	// A forged cookie is no session.
	u, _ := url.Parse(e.url + "/admin/")
	c.Jar.SetCookies(u, []*http.Cookie{{Name: CookieName, Value: testKey, Path: "/admin"}})
	if status, _ := e.call(c, "GET", "/admin/api/v1/queue", nil, false); status != http.StatusUnauthorized {
		t.Errorf("forged cookie: %d", status)
	}
	r, _ := c.Get(e.url + "/admin/")
	page, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if r.StatusCode != http.StatusOK || !strings.Contains(string(page), `action="/admin/login"`) {
		t.Fatalf("GET /admin/ without a session: %d\n%s", r.StatusCode, page)
	}
}

func TestSessionExpiresWhenIdleAndAtMaxAge(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{SessionTTL: time.Hour, MaxAge: 3 * time.Hour})
	c := e.loggedIn()
	ok := func(when string, want int) {
		t.Helper()
		if status, _ := e.call(c, "GET", "/admin/api/v1/queue", nil, false); status != want {
			t.Fatalf("%s: %d, want %d", when, status, want)
		}
	}
	// Use keeps it alive past the idle timeout...
	for range 2 {
		e.clock.Add(50 * time.Minute)
		ok("used within the idle timeout", http.StatusOK)
	}
	// ...but not past MaxAge.
	e.clock.Add(50 * time.Minute) // 2h30
	ok("at 2h30", http.StatusOK)
	e.clock.Add(31 * time.Minute)
	ok("past MaxAge", http.StatusUnauthorized)

	c = e.loggedIn()
	e.clock.Add(time.Hour)
	ok("idle for SessionTTL", http.StatusUnauthorized)
}

func TestStateChangeNeedsCSRFHeader(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.loggedIn()
	ev := map[string]any{"events": []map[string]any{{"users": []string{"42"}, "module_id": "t", "command": "c"}}}
	status, m := e.call(c, "POST", "/admin/api/v1/events", ev, false)
	if status != http.StatusForbidden || errCode(m) != "permission_denied" {
		t.Fatalf("POST without %s: %d %v, want 403", CSRFHeader, status, m)
	}
	status, m = e.call(c, "DELETE", "/admin/api/v1/queue/dead", map[string]any{"all": true}, false)
	if status != http.StatusForbidden {
		t.Fatalf("DELETE without %s: %d %v, want 403", CSRFHeader, status, m)
	}
	if status, m = e.call(c, "POST", "/admin/api/v1/events", ev, true); status != http.StatusAccepted {
		t.Fatalf("POST with the header: %d %v", status, m)
	}
	// A browser marking the request cross-site is refused even with the
	// header (a page cannot forge Sec-Fetch-Site).
	req, _ := http.NewRequest("POST", e.url+"/admin/api/v1/queue/dead/retry", strings.NewReader(`{"all":true}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(CSRFHeader, "1")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d, want 403", res.StatusCode)
	}
}

func TestCrossSiteLoginRefused(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	req, _ := http.NewRequest("POST", e.url+"/admin/login", strings.NewReader(url.Values{"key": {testKey}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := e.browser().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusForbidden || len(res.Cookies()) != 0 {
		t.Fatalf("cross-site login: %d %v", res.StatusCode, res.Cookies())
	}
}

func TestLogoutEndsSession(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.loggedIn()
	u, _ := url.Parse(e.url + "/admin/")
	old := c.Jar.Cookies(u)
	if status, _ := e.call(c, "POST", "/admin/logout", nil, false); status != http.StatusForbidden {
		t.Fatalf("logout without the CSRF header: %d, want 403", status)
	}
	if status, _ := e.call(c, "POST", "/admin/logout", nil, true); status != http.StatusNoContent {
		t.Fatalf("logout: %d", status)
	}
	if e.admin.Sessions() != 0 {
		t.Fatalf("sessions after logout: %d", e.admin.Sessions())
	}
	// The old cookie value, replayed, no longer works.
	replay := e.browser()
	replay.Jar.SetCookies(u, old)
	if status, _ := e.call(replay, "GET", "/admin/api/v1/queue", nil, false); status != http.StatusUnauthorized {
		t.Fatalf("replayed cookie after logout: %d, want 401", status)
	}
}

func TestRemovedKeyEndsItsSessions(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.loggedIn()
	e.keys.Set([]string{"another-key-0123456789"})
	if status, _ := e.call(c, "GET", "/admin/api/v1/queue", nil, false); status != http.StatusUnauthorized {
		t.Fatalf("session of a removed key: %d, want 401", status)
	}
}

func TestFailedLoginsAreRateLimited(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{LoginFailures: 3, LoginWindow: time.Minute})
	c := e.browser()
	for i := range 3 {
		if res := e.login(c, "bad"); res.StatusCode != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d", i, res.StatusCode)
		}
	}
	// Locked out: even the right key is refused until the window ends.
	res := e.login(c, testKey)
	if res.StatusCode != http.StatusTooManyRequests || res.Header.Get("Retry-After") != "60" {
		t.Fatalf("after 3 failures: %d Retry-After %q", res.StatusCode, res.Header.Get("Retry-After"))
	}
	e.clock.Add(time.Minute)
	if res := e.login(c, testKey); res.StatusCode != http.StatusSeeOther {
		t.Fatalf("after the window: %d", res.StatusCode)
	}
}

func TestSessionTableIsBounded(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxSessions: 2})
	first := e.loggedIn()
	e.clock.Add(time.Second)
	second := e.loggedIn()
	e.clock.Add(time.Second)
	e.call(first, "GET", "/admin/api/v1/queue", nil, false) // first is now the most recent
	e.clock.Add(time.Second)
	third := e.loggedIn()
	if n := e.admin.Sessions(); n != 2 {
		t.Fatalf("sessions: %d, want 2", n)
	}
	for name, c := range map[string]*http.Client{"first": first, "third": third} {
		if status, _ := e.call(c, "GET", "/admin/api/v1/queue", nil, false); status != http.StatusOK {
			t.Errorf("%s: %d", name, status)
		}
	}
	if status, _ := e.call(second, "GET", "/admin/api/v1/queue", nil, false); status != http.StatusUnauthorized {
		t.Errorf("least recently used session survived: %d", status)
	}
}

func TestAssetsAndSecurityHeaders(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.browser()
	get := func(p string, hdr ...string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest("GET", e.url+p, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res
	}
	page := get("/admin/")
	csp := page.Header.Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Errorf("CSP %q", csp)
	}
	if page.Header.Get("Cache-Control") != "no-store" || page.Header.Get("X-Frame-Options") != "DENY" {
		t.Errorf("page headers: %v", page.Header)
	}
	for p, ct := range map[string]string{"app.js": "text/javascript; charset=utf-8", "style.css": "text/css; charset=utf-8"} {
		res := get("/admin/assets/" + p)
		if res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != ct || res.Header.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: %d %v", p, res.StatusCode, res.Header)
		}
		if again := get("/admin/assets/"+p, "If-None-Match", res.Header.Get("ETag")); again.StatusCode != http.StatusNotModified {
			t.Errorf("%s with its ETag: %d, want 304", p, again.StatusCode)
		}
	}
	for _, p := range []string{"/admin/assets/index.html", "/admin/assets/login.html", "/admin/assets/../admin.go", "/admin/assets/nope.js"} {
		if res := get(p); res.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", p, res.StatusCode)
		}
	}
	if res := get("/admin"); res.StatusCode != http.StatusMovedPermanently || res.Header.Get("Location") != "/admin/" {
		t.Errorf("/admin: %d %q", res.StatusCode, res.Header.Get("Location"))
	}
}

func TestUserTags(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.loggedIn()
	if status, m := e.call(c, "POST", "/admin/api/v1/watch", map[string]any{"users": []string{"42"}, "tags": []string{"IM_CHAT_17", "IM_CHAT_9"}}, true); status != http.StatusOK {
		t.Fatalf("watch: %d %v", status, m)
	}
	status, m := e.call(c, "GET", "/admin/api/users/42/tags", nil, false)
	tags, _ := m["tags"].([]any)
	if status != http.StatusOK || len(tags) != 2 {
		t.Fatalf("tags: %d %v", status, m)
	}
	_, m = e.call(c, "GET", "/admin/api/users/43/tags", nil, false)
	if tags, ok := m["tags"].([]any); !ok || len(tags) != 0 {
		t.Fatalf("user without tags: %v", m)
	}
}

func TestRegisterValidates(t *testing.T) {
	t.Parallel()
	srv := &api.Server{}
	keys := api.NewKeys([]string{"k"})
	cases := []struct {
		d    Deps
		o    Options
		want string
	}{
		{Deps{API: srv}, Options{}, "Keys"},
		{Deps{Keys: keys}, Options{}, "API"},
		{Deps{Keys: keys, API: srv}, Options{SessionTTL: -1}, "SessionTTL"},
		{Deps{Keys: keys, API: srv}, Options{MaxSessions: -1}, "MaxSessions"},
		{Deps{Keys: keys, API: srv}, Options{LoginWindow: -1}, "LoginWindow"},
	}
	for _, tc := range cases {
		_, err := Register(echo.New(), tc.d, tc.o)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one naming %s", tc.o, err, tc.want)
		}
	}
}

func TestLoginLogsNeverHoldTheKey(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	c := e.browser()
	const wrong = "wrong-key-that-must-not-be-logged"
	e.login(c, wrong)
	e.login(c, testKey)
	logs := e.logs.String()
	if !strings.Contains(logs, "admin login failed") || !strings.Contains(logs, "msg=\"admin login\"") {
		t.Fatalf("logins not logged:\n%s", logs)
	}
	for _, k := range []string{wrong, testKey, wrong[:8], testKey[:8]} {
		if strings.Contains(logs, k) {
			t.Fatalf("log holds %q:\n%s", k, logs)
		}
	}
}

func TestCookieIsSecureBehindHTTPS(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	req, _ := http.NewRequest("POST", e.url+"/admin/login", strings.NewReader(url.Values{"key": {testKey}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	// As a TLS-terminating proxy in front of the listener says.
	req.Header.Set("X-Forwarded-Proto", "https")
	res, err := e.browser().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if cks := res.Cookies(); len(cks) != 1 || !cks[0].Secure {
		t.Fatalf("cookies over https: %+v", cks)
	}
}
