// Package admin is the operator dashboard served at /admin/ on the
// publisher listener: live counters with small charts, user and
// notification look-ups, dead-letter handling and test sends.
//
// It owns the admin session store and the login rate limiter, both in
// memory (a restart logs everyone out). A session is opened by posting an
// API key to /admin/login; the cookie holds only a random 256-bit id, never
// the key, and a session ends when its key is no longer accepted, after
// Options.SessionTTL without use, after Options.MaxAge, or on logout.
//
// The dashboard's data comes from the documented publisher API, mounted a
// second time at /admin/api/v1 behind the session instead of the key, plus
// two admin-only reads: /admin/api/stats (a compact snapshot of the
// Prometheus registry) and /admin/api/users/:user/tags (watched tags, which
// the public API does not list per user). Requests that change state must
// carry the X-Pushpull-Admin: 1 header, which a cross-site form cannot
// send; with SameSite=Strict cookies that is the CSRF defence.
//
// The HTML, CSS and JS are embedded in the binary (no CDN, no build step)
// and served under a Content-Security-Policy that allows no inline script.
package admin
