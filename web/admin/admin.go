package admin

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

//go:embed assets
var assetFS embed.FS

// Paths and names the dashboard and its tests rely on.
const (
	// Prefix is where the dashboard lives on the publisher listener.
	Prefix = "/admin"
	// CookieName is the session cookie; its value is a random id only.
	CookieName = "pushpull_admin"
	// CSRFHeader must be sent, with the value "1", on every admin request
	// that is not GET or HEAD. Browsers do not let a cross-site form set
	// it, and a cross-site fetch that sets it does not carry the
	// SameSite=Strict cookie.
	CSRFHeader = "X-Pushpull-Admin"
)

// contentSecurityPolicy allows only the dashboard's own files: no inline
// script or style, no third-party origin, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// Deps are the parts of the gateway the dashboard shows and drives.
type Deps struct {
	// Keys decides which API keys open a session (required). Sessions
	// end when their key leaves the set.
	Keys *api.Keys
	// API is the publisher API, mounted again at /admin/api/v1 behind
	// the session (required).
	API *api.Server
	// Metrics is read for /admin/api/stats; nil serves a snapshot whose
	// values are all null.
	Metrics prometheus.Gatherer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Options tune sessions and the login limit. Zero values take the
// documented defaults.
type Options struct {
	// SessionTTL ends a session not used for this long (default 12h).
	SessionTTL time.Duration
	// MaxAge ends a session this long after login, used or not
	// (default 7 days).
	MaxAge time.Duration
	// MaxSessions bounds the session table (default 100); when full, the
	// least recently used session is dropped.
	MaxSessions int
	// LoginFailures failed logins from one address within LoginWindow
	// lock that address out until the window ends (defaults 10 and 5m).
	LoginFailures int
	LoginWindow   time.Duration
	// Now is the clock (default time.Now); tests move it.
	Now func() time.Time
}

// Validate names the first bad option.
func (o Options) Validate() error {
	switch {
	case o.SessionTTL < 0:
		return errors.New("admin: SessionTTL must not be negative")
	case o.MaxAge < 0:
		return errors.New("admin: MaxAge must not be negative")
	case o.MaxSessions < 0:
		return errors.New("admin: MaxSessions must not be negative")
	case o.LoginFailures < 0:
		return errors.New("admin: LoginFailures must not be negative")
	case o.LoginWindow < 0:
		return errors.New("admin: LoginWindow must not be negative")
	}
	return nil
}

func (o *Options) setDefaults() {
	if o.SessionTTL == 0 {
		o.SessionTTL = 12 * time.Hour
	}
	if o.MaxAge == 0 {
		o.MaxAge = 7 * 24 * time.Hour
	}
	if o.MaxSessions == 0 {
		o.MaxSessions = 100
	}
	if o.LoginFailures == 0 {
		o.LoginFailures = 10
	}
	if o.LoginWindow == 0 {
		o.LoginWindow = 5 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
}

// maxLimiterAddrs bounds the login limiter's memory.
const maxLimiterAddrs = 10000

// Admin is the mounted dashboard. It owns no goroutine; its methods are
// safe for concurrent use.
type Admin struct {
	d        Deps
	o        Options
	log      *slog.Logger
	sessions *sessions
	limiter  *limiter
	login    *template.Template
	index    []byte
	assets   map[string]asset
}

type asset struct {
	ctype string
	etag  string
	body  []byte
}

// Register mounts the dashboard under /admin on e, the publisher
// listener's router. e's error handler should be apierr.Handler, so that
// admin API errors have the API's shape.
func Register(e *echo.Echo, d Deps, o Options) (*Admin, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	switch {
	case d.Keys == nil:
		return nil, errors.New("admin: Deps.Keys is required")
	case d.API == nil:
		return nil, errors.New("admin: Deps.API is required")
	}
	o.setDefaults()
	a := &Admin{d: d, o: o, log: d.Logger, assets: make(map[string]asset)}
	if a.log == nil {
		a.log = slog.Default()
	}
	a.sessions = newSessions(o.MaxSessions, o.SessionTTL, o.MaxAge, o.Now)
	a.limiter = newLimiter(maxLimiterAddrs, o.LoginFailures, o.LoginWindow, o.Now)
	if err := a.loadAssets(); err != nil {
		return nil, err
	}

	g := e.Group(Prefix, a.secureHeaders)
	e.GET(Prefix, func(c echo.Context) error {
		return c.Redirect(http.StatusMovedPermanently, Prefix+"/")
	})
	g.GET("/", a.serveIndex)
	g.GET("/assets/*", a.serveAsset)
	g.POST("/login", a.postLogin)
	g.POST("/logout", a.postLogout)
	ag := g.Group("/api", a.requireSession)
	ag.GET("/stats", a.getStats)
	ag.GET("/users/:user/tags", a.getUserTags)
	d.API.Register(ag.Group("/v1"))
	return a, nil
}

// Sessions returns the number of open sessions, expired ones included
// until they are next looked at.
func (a *Admin) Sessions() int { return a.sessions.len() }

// Close ends every session. It is idempotent; the routes stay mounted and
// anyone may log in again.
func (a *Admin) Close() error {
	a.sessions.clear()
	return nil
}

func (a *Admin) loadAssets() error {
	sub, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return err
	}
	if a.index, err = fs.ReadFile(sub, "index.html"); err != nil {
		return err
	}
	if a.login, err = template.ParseFS(sub, "login.html"); err != nil {
		return err
	}
	return fs.WalkDir(sub, ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() || strings.HasSuffix(p, ".html") {
			return err
		}
		body, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".css":
			ctype = "text/css; charset=utf-8"
		}
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		sum := sha256.Sum256(body)
		a.assets[p] = asset{ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`, body: body}
		return nil
	})
}

// secureHeaders applies to every /admin response: nothing here may be
// cached by a shared cache, framed or sniffed into another type.
func (a *Admin) secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		return next(c)
	}
}

func (a *Admin) serveIndex(c echo.Context) error {
	if a.current(c) == nil {
		return a.renderLogin(c, http.StatusOK, "")
	}
	return c.Blob(http.StatusOK, "text/html; charset=utf-8", a.index)
}

func (a *Admin) serveAsset(c echo.Context) error {
	f, ok := a.assets[c.Param("*")]
	if !ok {
		return apierr.New(apierr.CodeNotFound, "no such file")
	}
	h := c.Response().Header()
	// Assets are public and change only with the binary: revalidate by
	// ETag rather than refetch.
	h.Set("Cache-Control", "no-cache")
	h.Set("ETag", f.etag)
	if c.Request().Header.Get("If-None-Match") == f.etag {
		return c.NoContent(http.StatusNotModified)
	}
	return c.Blob(http.StatusOK, f.ctype, f.body)
}

func (a *Admin) renderLogin(c echo.Context, status int, msg string) error {
	var buf bytes.Buffer
	if err := a.login.Execute(&buf, struct{ Error string }{msg}); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// crossSite reports a request a browser marked as coming from another
// site. Sec-Fetch-Site is set by the browser and cannot be forged by a
// page; it is absent from non-browser clients, which carry no ambient
// cookie anyway.
func crossSite(c echo.Context) bool {
	s := c.Request().Header.Get("Sec-Fetch-Site")
	return s != "" && s != "same-origin" && s != "none"
}

func (a *Admin) postLogin(c echo.Context) error {
	if crossSite(c) {
		return apierr.New(apierr.CodePermissionDenied, "cross-site login refused")
	}
	ip := c.RealIP()
	if blocked, left := a.limiter.blocked(ip); blocked {
		a.log.Warn("admin login refused: too many failures", "remote", ip)
		secs := int(left.Round(time.Second) / time.Second)
		c.Response().Header().Set("Retry-After", strconv.Itoa(max(secs, 1)))
		return a.renderLogin(c, http.StatusTooManyRequests, "Too many failed attempts. Try again in "+strconv.Itoa(max(secs, 1))+" s.")
	}
	key := c.FormValue("key")
	if !a.d.Keys.Valid(key) {
		a.limiter.fail(ip)
		a.log.Warn("admin login failed", "remote", ip)
		return a.renderLogin(c, http.StatusUnauthorized, "Invalid API key.")
	}
	a.limiter.forget(ip)
	id, err := a.sessions.open(key)
	if err != nil {
		return err
	}
	c.SetCookie(&http.Cookie{
		Name: CookieName, Value: id, Path: Prefix,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https",
	})
	a.log.Info("admin login", "remote", ip)
	return c.Redirect(http.StatusSeeOther, Prefix+"/")
}

func (a *Admin) postLogout(c echo.Context) error {
	if err := checkCSRF(c); err != nil {
		return err
	}
	if ck, err := c.Cookie(CookieName); err == nil {
		a.sessions.close(ck.Value)
	}
	c.SetCookie(&http.Cookie{
		Name: CookieName, Value: "", Path: Prefix, MaxAge: -1,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: c.Scheme() == "https",
	})
	return c.NoContent(http.StatusNoContent)
}

// current returns the request's live session, or nil.
func (a *Admin) current(c echo.Context) *session {
	ck, err := c.Cookie(CookieName)
	if err != nil {
		return nil
	}
	return a.sessions.get(ck.Value, a.d.Keys.Valid)
}

// requireSession guards /admin/api: a live session, and for anything but
// a read, the CSRF header.
func (a *Admin) requireSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if a.current(c) == nil {
			return apierr.New(apierr.CodeUnauthenticated, "admin session required: log in at %s/", Prefix)
		}
		if err := checkCSRF(c); err != nil {
			return err
		}
		return next(c)
	}
}

func checkCSRF(c echo.Context) error {
	switch c.Request().Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return nil
	}
	if c.Request().Header.Get(CSRFHeader) != "1" || crossSite(c) {
		return apierr.New(apierr.CodePermissionDenied, "state-changing admin requests need the %s: 1 header", CSRFHeader)
	}
	return nil
}

func (a *Admin) getStats(c echo.Context) error {
	return c.JSON(http.StatusOK, snapshot(a.d.Metrics, a.o.Now()))
}

// getUserTags lists the tags a user watches now. The public API can list
// a tag's watchers but not a user's tags, and the dashboard's user view
// needs the latter.
func (a *Admin) getUserTags(c echo.Context) error {
	if a.d.API.Live == nil {
		return apierr.New(apierr.CodeUnavailable, "live service not configured")
	}
	user := c.Param("user")
	tags := a.d.API.Live.WatchedTags(user)
	if tags == nil {
		tags = []string{}
	}
	return c.JSON(http.StatusOK, map[string]any{"user": user, "tags": tags})
}
