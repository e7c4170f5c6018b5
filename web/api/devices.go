package api

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/web/apierr"
)

// DeviceBody is what apps send to register a device (POST /sub/devices),
// and, with User, what backends send on their behalf (POST /api/v1/devices).
type DeviceBody struct {
	DeviceID  string `json:"device_id"`
	Platform  string `json:"platform"`
	Token     string `json:"token"`
	VoIPToken string `json:"voip_token"`
	AppID     string `json:"app_id"`
	Sandbox   bool   `json:"sandbox"`
	Locale    string `json:"locale"`
	Timezone  string `json:"timezone"`
	Name      string `json:"name"`
}

// Device returns the registry record for user.
func (b DeviceBody) Device(user string) devices.Device {
	return devices.Device{
		ID: b.DeviceID, User: user, Platform: b.Platform, Token: b.Token, VoIPToken: b.VoIPToken,
		AppID: b.AppID, Sandbox: b.Sandbox, Locale: b.Locale, Timezone: b.Timezone, Name: b.Name,
	}
}

// RegistrationAnswer is the answer to a device registration.
type RegistrationAnswer struct {
	Device  devices.Device `json:"device"`
	Created bool           `json:"created"`
	// MovedFrom is set when the token or device belonged to another user,
	// who no longer receives pushes on it.
	MovedFrom string `json:"moved_from,omitempty"`
}

// RegisterDevice validates and stores d, answering 201 for a new device
// and 200 for an update. Validation errors name the body field.
func RegisterDevice(c echo.Context, reg DeviceStore, d devices.Device) error {
	if err := devices.Validate(devices.Normalize(d)); err != nil {
		return err
	}
	r, err := reg.Register(c.Request().Context(), d)
	if err != nil {
		return err
	}
	status := http.StatusOK
	if r.Created {
		status = http.StatusCreated
	}
	return c.JSON(status, RegistrationAnswer{Device: r.Device, Created: r.Created, MovedFrom: r.MovedFrom})
}

type backendDeviceBody struct {
	User string `json:"user"`
	DeviceBody
}

func (s *Server) registerDevices(g *echo.Group) {
	g.POST("/devices", s.postDevice)
	g.GET("/users/:user/devices", s.listUserDevices)
	g.DELETE("/devices/:id", s.deleteDevice)
}

// postDevice registers a device on behalf of a user (Bitrix's
// save_device_token), for backends that receive tokens themselves.
func (s *Server) postDevice(c echo.Context) error {
	var b backendDeviceBody
	if err := Decode(c, &b); err != nil {
		return err
	}
	if b.User == "" {
		return apierr.Invalid("user", "required")
	}
	return RegisterDevice(c, s.Devices, b.Device(b.User))
}

func (s *Server) listUserDevices(c echo.Context) error {
	user := c.Param("user")
	ds, err := s.Devices.ListByUser(c.Request().Context(), user)
	if err != nil {
		return err
	}
	if ds == nil {
		ds = []devices.Device{}
	}
	return c.JSON(http.StatusOK, map[string]any{"user": user, "devices": ds})
}

func (s *Server) deleteDevice(c echo.Context) error {
	d, err := s.Devices.Remove(c.Request().Context(), c.Param("id"))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, map[string]any{"deleted": d})
}
