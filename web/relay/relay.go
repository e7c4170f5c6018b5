// Package relay serves the Bitrix push relay endpoint on the publisher
// listener: a portal whose pull option push_service_url points here POSTs
// its CPushManager batches, and pushpull delivers them with the operator's
// own APNs/FCM/HMS credentials through the durable queue.
//
// The request is "POST <path>/<secret>/?key=<md5>" with the form body
// "Action=SendMessage&MessageBody=<batch>". The secret path segment and the
// key are both checked in constant time. The batch is parsed and every
// usable frame stored as a push job in one commit before the 200 answer, so
// a crash after the answer loses nothing; a batch takes milliseconds, well
// inside the portal's 1 s read timeout. Answers are XML (the portal
// ignores them; its site checker looks for "xml version=").
package relay

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	gwrelay "github.com/pushpull/pushpull/gateway/relay"
	"github.com/pushpull/pushpull/web"
)

// Options configures the endpoint.
type Options struct {
	// Prefix is the route prefix; the route is Prefix + "/:secret" (with
	// and without a trailing slash). Default "/bitrix-relay".
	Prefix string
	// Secret is the path segment after Prefix; required (at least 16
	// characters): the md5 keys portals send are weak (demo portals all
	// send md5("DEMO")), so the path carries the real secret.
	Secret string
	// Keys are the accepted ?key= values (md5 hex of the portals' license
	// keys); at least one.
	Keys []string
	// MaxBody caps a request body. Default gwrelay.DefaultMaxBody (16 MiB).
	MaxBody int64
	// Logger gets one line per batch. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid field by name.
func (o Options) Validate() error {
	switch {
	case o.Prefix != "" && (!strings.HasPrefix(o.Prefix, "/") || strings.HasSuffix(o.Prefix, "/")):
		return fmt.Errorf("relay: Prefix: %q must start and not end with /", o.Prefix)
	case len(o.Secret) < 16:
		return errors.New("relay: Secret: at least 16 characters are required")
	case strings.ContainsAny(o.Secret, "/?#% "):
		return errors.New("relay: Secret: must be one path segment (no / ? # % or spaces)")
	case len(o.Keys) == 0:
		return errors.New("relay: Keys: at least one portal key (md5 hex) is required")
	case o.MaxBody < 0:
		return errors.New("relay: MaxBody: negative")
	}
	for i, k := range o.Keys {
		if len(k) != 32 || strings.Trim(strings.ToLower(k), "0123456789abcdef") != "" {
			return fmt.Errorf("relay: Keys[%d]: not 32 hex digits (the md5 of a license key)", i)
		}
	}
	return nil
}

// Route returns the route pattern Register serves, for body-limit and
// logging configuration of the listener.
func (o Options) Route() string {
	p := o.Prefix
	if p == "" {
		p = "/bitrix-relay"
	}
	return p + "/:secret"
}

type handler struct {
	svc *gwrelay.Service
	o   Options
}

// Register adds the endpoint to e (the publisher listener). The listener's
// general body limit must not apply to Route (see web.Options): the
// handler reads the body with its own cap.
func Register(e *echo.Echo, svc *gwrelay.Service, o Options) error {
	if err := o.Validate(); err != nil {
		return err
	}
	if o.MaxBody == 0 {
		o.MaxBody = gwrelay.DefaultMaxBody
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	h := &handler{svc: svc, o: o}
	e.POST(o.Route(), h.send)
	e.POST(o.Route()+"/", h.send)
	return nil
}

func (h *handler) send(c echo.Context) error {
	c.Set(web.LogPathKey, h.o.Route()) // the real path holds the secret
	if subtle.ConstantTimeCompare([]byte(c.Param("secret")), []byte(h.o.Secret)) != 1 {
		return reply(c, http.StatusNotFound, "NotFound", "no such endpoint")
	}
	if !gwrelay.KeyAllowed(c.QueryParam("key"), h.o.Keys) {
		h.o.Logger.Warn("relay: batch refused: unknown portal key", "remote", c.RealIP())
		return reply(c, http.StatusForbidden, "InvalidClientTokenId", "unknown key")
	}
	form, err := gwrelay.ReadForm(c.Request().Body, h.o.MaxBody)
	switch {
	case errors.Is(err, gwrelay.ErrBodyTooLarge):
		return reply(c, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", err.Error())
	case errors.Is(err, gwrelay.ErrWrongAction):
		return reply(c, http.StatusBadRequest, "InvalidAction", err.Error())
	case err != nil:
		return reply(c, http.StatusBadRequest, "MalformedRequest", err.Error())
	}
	out, err := h.svc.Accept(c.Request().Context(), form.MessageBody)
	if err != nil {
		h.o.Logger.Error("relay: batch not stored", "err", err)
		return reply(c, http.StatusServiceUnavailable, "ServiceUnavailable", "the batch could not be stored; nothing was queued")
	}
	skipped := 0
	for _, n := range out.Skipped {
		skipped += n
	}
	lvl := slog.LevelInfo
	if skipped > 0 {
		lvl = slog.LevelWarn
	}
	h.o.Logger.Log(c.Request().Context(), lvl, "relay: batch accepted", "layout", out.Layout.String(),
		"frames", out.Frames, "jobs", out.Jobs, "skipped", skipped, "skipped_by_reason", out.Skipped)
	hd := c.Response().Header()
	hd.Set("X-Pushpull-Jobs", strconv.Itoa(out.Jobs))
	hd.Set("X-Pushpull-Skipped", strconv.Itoa(skipped))
	return c.Blob(http.StatusOK, gwrelay.ReplyContentType, []byte(gwrelay.ReplyBody))
}

// reply sends an SQS-style XML error. code and message come from this
// package, never from the request, so they need no escaping beyond what
// xmlEscape does for the error texts of ReadForm.
func reply(c echo.Context, status int, code, message string) error {
	body := `<?xml version="1.0" encoding="UTF-8"?>` + "\n<ErrorResponse><Error><Type>Sender</Type><Code>" +
		code + "</Code><Message>" + xmlEscape(message) + "</Message></Error></ErrorResponse>\n"
	if status >= 500 {
		body = strings.Replace(body, "<Type>Sender</Type>", "<Type>Receiver</Type>", 1)
	}
	return c.Blob(status, gwrelay.ReplyContentType, []byte(body))
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", `"`, "&quot;", "'", "&apos;").Replace(s)
}
