package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/apierr"
)

// RegisterPush adds POST /push, GET /push/:id and POST /push/cancel to g
// (which must already require an API key). Server.Register calls it with
// its Push service, Limits and Logger; it is exported for compositions
// without a full Server (pushpull demo). Zero limits mean DefaultLimits.
func RegisterPush(g *echo.Group, svc *push.Service, limits Limits, log *slog.Logger) {
	if limits == (Limits{}) {
		limits = DefaultLimits
	}
	if log == nil {
		log = slog.Default()
	}
	h := &pushHandlers{svc: svc, limits: limits, log: log, now: time.Now}
	g.POST("/push", h.send)
	g.POST("/push/cancel", h.cancel)
	g.GET("/push/:id", h.status)
}

type pushHandlers struct {
	svc    *push.Service
	limits Limits
	log    *slog.Logger
	now    func() time.Time
}

// PushRequest is the body of POST /api/v1/push.
type PushRequest struct {
	Notifications []PushNotification `json:"notifications"`
}

// PushNotification is one notification of a push request, as API.md
// documents it.
type PushNotification struct {
	Users            []string            `json:"users"`
	Devices          []push.DeviceTarget `json:"devices"`
	SkipUsers        []string            `json:"skip_users"`
	AppID            string              `json:"app_id"`
	Title            string              `json:"title"`
	Subtitle         string              `json:"subtitle"`
	Body             string              `json:"body"`
	Badge            *int                `json:"badge"`
	Sound            string              `json:"sound"`
	Category         string              `json:"category"`
	ThreadID         string              `json:"thread_id"`
	Data             json.RawMessage     `json:"data"`
	Tag              string              `json:"tag"`
	SubTag           string              `json:"sub_tag"`
	CollapseID       string              `json:"collapse_id"`
	Priority         string              `json:"priority"`
	PushType         string              `json:"push_type"`
	ContentAvailable bool                `json:"content_available"`
	MutableContent   bool                `json:"mutable_content"`
	// Expiry is in seconds; omitted or 0: the server default (43200).
	Expiry *int64 `json:"expiry"`
	// SendAt (RFC 3339) or Delay (seconds) defer sending; not both.
	SendAt         string          `json:"send_at"`
	Delay          *int64          `json:"delay"`
	WhenOnline     string          `json:"when_online"`
	IdempotencyKey string          `json:"idempotency_key"`
	APNs           json.RawMessage `json:"apns"`
	FCM            json.RawMessage `json:"fcm"`
}

// PushResponse is the 202 answer of POST /api/v1/push.
type PushResponse struct {
	Results []push.Result `json:"results"`
}

// CancelRequest is the body of POST /api/v1/push/cancel.
type CancelRequest struct {
	Users  []string `json:"users"`
	Tag    string   `json:"tag"`
	SubTag string   `json:"sub_tag"`
}

// CancelResponse answers how many queued jobs were removed.
type CancelResponse struct {
	Cancelled int `json:"cancelled"`
}

// maxDelaySeconds bounds delay and expiry before they become durations
// (the service applies its own, smaller, MaxExpiry).
const maxDelaySeconds = 10 * 365 * 24 * 3600

func (h *pushHandlers) send(c echo.Context) error {
	var body PushRequest
	if err := Decode(c, &body); err != nil {
		return err
	}
	switch n := len(body.Notifications); {
	case n == 0:
		return apierr.Invalid("notifications", "at least one notification is required")
	case n > h.limits.MaxItems:
		return apierr.Invalid("notifications", "at most %d notifications per request", h.limits.MaxItems)
	}
	// The whole batch is checked before anything is stored.
	now := h.now()
	reqs := make([]push.Request, len(body.Notifications))
	for i := range body.Notifications {
		item := Item("notifications", i)
		r, err := h.toRequest(&body.Notifications[i], now)
		if err != nil {
			return err.WithField(item)
		}
		if err := h.svc.Validate(&r); err != nil {
			return fieldError(err).WithField(item)
		}
		reqs[i] = r
	}
	results, err := h.svc.Push(c.Request().Context(), reqs)
	if err != nil {
		return h.pushError(err)
	}
	return c.JSON(http.StatusAccepted, PushResponse{Results: results})
}

func (h *pushHandlers) toRequest(n *PushNotification, now time.Time) (push.Request, *apierr.Error) {
	for _, l := range []struct {
		name string
		n    int
	}{{"users", len(n.Users)}, {"devices", len(n.Devices)}, {"skip_users", len(n.SkipUsers)}} {
		if l.n > h.limits.MaxRecipients {
			return push.Request{}, apierr.Invalid(l.name, "at most %d recipients", h.limits.MaxRecipients)
		}
	}
	r := push.Request{
		Users: n.Users, SkipUsers: n.SkipUsers, Devices: n.Devices, AppID: n.AppID,
		Tag: n.Tag, SubTag: n.SubTag, WhenOnline: n.WhenOnline, IdempotencyKey: n.IdempotencyKey,
		Notification: providers.Notification{
			Title: n.Title, Subtitle: n.Subtitle, Body: n.Body, Badge: n.Badge, Sound: n.Sound,
			Category: n.Category, ThreadID: n.ThreadID, Data: nullToNil(n.Data),
			ContentAvailable: n.ContentAvailable, MutableContent: n.MutableContent,
			PushType: n.PushType, Priority: n.Priority, CollapseID: n.CollapseID,
			APNs: nullToNil(n.APNs), FCM: nullToNil(n.FCM),
		},
	}
	if n.Expiry != nil {
		if *n.Expiry < 0 || *n.Expiry > maxDelaySeconds {
			return r, apierr.Invalid("expiry", "must be a number of seconds from 0")
		}
		r.Expiry = time.Duration(*n.Expiry) * time.Second
	}
	switch {
	case n.SendAt != "" && n.Delay != nil:
		return r, apierr.Invalid("delay", "give send_at or delay, not both")
	case n.SendAt != "":
		t, err := time.Parse(time.RFC3339, n.SendAt)
		if err != nil {
			return r, apierr.Invalid("send_at", "must be an RFC 3339 time, e.g. 2026-11-28T10:00:00Z")
		}
		r.SendAt = t
	case n.Delay != nil:
		if *n.Delay < 0 || *n.Delay > maxDelaySeconds {
			return r, apierr.Invalid("delay", "must be a number of seconds from 0")
		}
		if *n.Delay > 0 {
			r.SendAt = now.Add(time.Duration(*n.Delay) * time.Second)
		}
	}
	return r, nil
}

func (h *pushHandlers) status(c echo.Context) error {
	st, err := h.svc.Status(c.Request().Context(), c.Param("id"))
	if err != nil {
		return h.pushError(err)
	}
	return c.JSON(http.StatusOK, st)
}

func (h *pushHandlers) cancel(c echo.Context) error {
	var body CancelRequest
	if err := Decode(c, &body); err != nil {
		return err
	}
	if len(body.Users) > h.limits.MaxRecipients {
		return apierr.Invalid("users", "at most %d users", h.limits.MaxRecipients)
	}
	n, err := h.svc.Cancel(c.Request().Context(), body.Users, body.Tag, body.SubTag)
	if err != nil {
		return h.pushError(err)
	}
	return c.JSON(http.StatusOK, CancelResponse{Cancelled: n})
}

// pushError maps the push service's errors to API errors.
func (h *pushHandlers) pushError(err error) error {
	var fe *push.FieldError
	var be *push.BatchError
	switch {
	case errors.As(err, &be):
		return fieldError(be.Err).WithField(Item("notifications", be.Index))
	case errors.As(err, &fe):
		return fieldError(fe)
	case errors.Is(err, push.ErrNotFound):
		return apierr.New(apierr.CodeNotFound, "no such notification (unknown, or its status has expired)")
	case errors.Is(err, queue.ErrClosed):
		return &apierr.Error{Code: apierr.CodeUnavailable, Message: "shutting down", Err: err}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return &apierr.Error{Code: apierr.CodeUnavailable, Message: "timed out: try again (with an idempotency key)", Err: err}
	}
	return err
}

func fieldError(err error) *apierr.Error {
	var fe *push.FieldError
	if !errors.As(err, &fe) {
		return &apierr.Error{Code: apierr.CodeInternal, Message: "internal error", Err: err}
	}
	if fe.TooLarge {
		return apierr.TooLarge(fe.Field, "%s", fe.Message)
	}
	return apierr.Invalid(fe.Field, "%s", fe.Message)
}

func nullToNil(raw json.RawMessage) json.RawMessage {
	if string(raw) == "null" {
		return nil
	}
	return raw
}
