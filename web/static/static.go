// Package static serves the files the client listener gives to browsers:
// the JS client (/pullclient.js, /pullclient.mjs) and a small demo page
// (/). They are embedded in the binary: no build step, no CDN.
package static

import (
	"embed"
	"net/http"

	"github.com/labstack/echo/v4"
)

//go:embed pullclient.js pullclient.mjs index.html
var files embed.FS

// Register adds the static routes to the client listener's router.
func Register(e *echo.Echo) {
	serve := func(name, ctype string) echo.HandlerFunc {
		body, err := files.ReadFile(name)
		if err != nil {
			panic(err) // embedded at build time: cannot happen
		}
		return func(c echo.Context) error {
			h := c.Response().Header()
			h.Set("Cache-Control", "no-cache")
			h.Set("X-Content-Type-Options", "nosniff")
			if name == "index.html" {
				h.Set("Content-Security-Policy", "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'unsafe-inline'; connect-src 'self' ws: wss:")
			}
			return c.Blob(http.StatusOK, ctype, body)
		}
	}
	e.GET("/pullclient.js", serve("pullclient.js", "text/javascript; charset=utf-8"))
	e.GET("/pullclient.mjs", serve("pullclient.mjs", "text/javascript; charset=utf-8"))
	e.GET("/", serve("index.html", "text/html; charset=utf-8"))
}
