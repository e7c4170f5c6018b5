package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"strings"
	"sync/atomic"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/web/apierr"
)

// Keys is the set of accepted API keys. It can be replaced at run time
// (configuration reload) and is safe for concurrent use.
type Keys struct {
	v atomic.Pointer[[][32]byte]
}

// NewKeys returns a key set holding keys.
func NewKeys(keys []string) *Keys {
	k := &Keys{}
	k.Set(keys)
	return k
}

// Set replaces the accepted keys. Empty strings are ignored.
func (k *Keys) Set(keys []string) {
	hs := make([][32]byte, 0, len(keys))
	for _, s := range keys {
		if s != "" {
			hs = append(hs, sha256.Sum256([]byte(s)))
		}
	}
	k.v.Store(&hs)
}

// Valid reports whether key is one of the accepted keys. Keys are compared
// as SHA-256 digests in constant time, and every key is compared, so the
// time taken does not tell how much of a key matched or which one.
func (k *Keys) Valid(key string) bool {
	if key == "" {
		return false
	}
	h := sha256.Sum256([]byte(key))
	ok := 0
	for _, want := range *k.v.Load() {
		ok |= subtle.ConstantTimeCompare(h[:], want[:])
	}
	return ok == 1
}

// KeyFromRequest returns the key presented as "Authorization: Bearer <key>"
// or "X-API-Key: <key>".
func KeyFromRequest(c echo.Context) string {
	if k := c.Request().Header.Get("X-API-Key"); k != "" {
		return k
	}
	const prefix = "bearer "
	a := c.Request().Header.Get(echo.HeaderAuthorization)
	if len(a) > len(prefix) && strings.EqualFold(a[:len(prefix)], prefix) {
		return strings.TrimSpace(a[len(prefix):])
	}
	return ""
}

// RequireKey is middleware that rejects requests without a valid API key.
func RequireKey(keys *Keys) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			k := KeyFromRequest(c)
			if k == "" {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="pushpull"`)
				return apierr.New(apierr.CodeUnauthenticated, "API key required: send Authorization: Bearer <key> or X-API-Key")
			}
			if !keys.Valid(k) {
				c.Response().Header().Set(echo.HeaderWWWAuthenticate, `Bearer realm="pushpull", error="invalid_token"`)
				return apierr.New(apierr.CodeUnauthenticated, "invalid API key")
			}
			return next(c)
		}
	}
}
