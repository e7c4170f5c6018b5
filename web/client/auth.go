package client

import (
	"errors"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/web/apierr"
)

const claimsKey = "pushpull.claims"

// TokenFromRequest returns the client token from "?token=" (browsers cannot
// set headers on a WebSocket) or "Authorization: Bearer".
func TokenFromRequest(c echo.Context) string {
	if t := c.QueryParam("token"); t != "" {
		return t
	}
	const prefix = "bearer "
	a := c.Request().Header.Get(echo.HeaderAuthorization)
	if len(a) > len(prefix) && strings.EqualFold(a[:len(prefix)], prefix) {
		return strings.TrimSpace(a[len(prefix):])
	}
	return ""
}

// RequireToken is middleware that verifies the client token and stores its
// claims for Claims. A missing, invalid or expired token is answered 401
// before any upgrade.
func RequireToken(v *token.Issuer) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			s := TokenFromRequest(c)
			if s == "" {
				return apierr.New(apierr.CodeUnauthenticated, "client token required: ?token= or Authorization: Bearer")
			}
			cl, err := v.Verify(s)
			if err != nil {
				if errors.Is(err, token.ErrExpired) {
					return apierr.New(apierr.CodeUnauthenticated, "client token expired")
				}
				return apierr.New(apierr.CodeUnauthenticated, "invalid client token")
			}
			c.Set(claimsKey, cl)
			return next(c)
		}
	}
}

// Claims returns the verified claims stored by RequireToken.
func Claims(c echo.Context) (token.Claims, bool) {
	cl, ok := c.Get(claimsKey).(token.Claims)
	return cl, ok
}
