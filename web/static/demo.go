package static

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/web/apierr"
)

// DemoDeps are what the development-only demo routes call.
type DemoDeps struct {
	// Mint returns a client token for user.
	Mint func(user string) (string, error)
	// Send publishes a test event with text to user.
	Send func(ctx context.Context, user, text string) error
}

// RegisterDemo adds the development-only routes the demo page uses when
// [demo] enabled = true: POST /demo/token {"user"} mints a token and
// POST /demo/send {"user","text"} publishes a test event. They let anyone
// who reaches the client listener act as any user, so they are off by
// default and must never be enabled in production.
func RegisterDemo(e *echo.Echo, d DemoDeps) {
	type body struct {
		User string `json:"user"`
		Text string `json:"text"`
	}
	read := func(c echo.Context) (body, error) {
		var b body
		if err := c.Bind(&b); err != nil || b.User == "" || len(b.User) > 128 || len(b.Text) > 4096 {
			return b, apierr.Invalid("user", "a user id (and optional text up to 4096 bytes) is required")
		}
		return b, nil
	}
	e.POST("/demo/token", func(c echo.Context) error {
		b, err := read(c)
		if err != nil {
			return err
		}
		tok, err := d.Mint(b.User)
		if err != nil {
			return apierr.Invalid("user", "%v", err)
		}
		return c.JSON(http.StatusOK, map[string]string{"token": tok})
	})
	e.POST("/demo/send", func(c echo.Context) error {
		b, err := read(c)
		if err != nil {
			return err
		}
		if b.Text == "" {
			b.Text = "hello from the demo page"
		}
		if err := d.Send(c.Request().Context(), b.User, b.Text); err != nil {
			return err
		}
		return c.JSON(http.StatusAccepted, map[string]bool{"sent": true})
	})
}
