package client

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

// DevicesOptions configure the device routes for mobile apps.
type DevicesOptions struct {
	// PerUser bounds registrations per user (default 1/s, bursts of 10).
	PerUser RateLimit
}

// RegisterDevices adds POST/GET/DELETE /sub/devices to g. The user is
// always the token's: a body naming a user is rejected, and a device of
// another user is "not found" to the caller.
func RegisterDevices(g *echo.Group, reg api.DeviceStore, tokens *token.Issuer, o DevicesOptions) {
	if o.PerUser == (RateLimit{}) {
		o.PerUser = RateLimit{Rate: 1, Burst: 10}
	}
	lim := NewLimiter(o.PerUser, nil)
	mw := []echo.MiddlewareFunc{RequireToken(tokens), LimitBy(lim, ByUser)}
	g.POST("/sub/devices", func(c echo.Context) error {
		cl, _ := Claims(c)
		var b api.DeviceBody
		if err := api.Decode(c, &b); err != nil {
			return err
		}
		// Device ids are not secret; the push token is. Moving another
		// user's device id therefore needs the token stored with it (the
		// same phone, another account), or anyone could take over a
		// device record and silence its owner.
		if b.DeviceID != "" {
			d, err := reg.Get(c.Request().Context(), b.DeviceID)
			if err == nil && d.User != cl.User && d.Token != devices.Normalize(b.Device(cl.User)).Token {
				return apierr.New(apierr.CodeConflict, "device_id is registered to another user")
			}
			if err != nil && !errors.Is(err, devices.ErrNotFound) {
				return err
			}
		}
		return api.RegisterDevice(c, reg, b.Device(cl.User))
	}, mw...)
	g.GET("/sub/devices", func(c echo.Context) error {
		cl, _ := Claims(c)
		ds, err := reg.ListByUser(c.Request().Context(), cl.User)
		if err != nil {
			return err
		}
		if ds == nil {
			ds = []devices.Device{}
		}
		return c.JSON(http.StatusOK, map[string]any{"devices": ds})
	}, mw...)
	g.DELETE("/sub/devices/:id", func(c echo.Context) error {
		cl, _ := Claims(c)
		ctx := c.Request().Context()
		d, err := reg.Get(ctx, c.Param("id"))
		if errors.Is(err, devices.ErrNotFound) || (err == nil && d.User != cl.User) {
			return apierr.New(apierr.CodeNotFound, "no such device")
		}
		if err != nil {
			return err
		}
		if _, err := reg.Remove(ctx, d.ID); err != nil {
			return err
		}
		return c.JSON(http.StatusOK, map[string]any{"deleted": d})
	}, mw...)
}
