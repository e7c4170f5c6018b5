package push

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fcm"
)

// Online policies of a notification (Request.WhenOnline).
const (
	// WhenOnlineSend pushes to online users too (the default of /push).
	WhenOnlineSend = "send"
	// WhenOnlineSkip pushes to offline users only (the default for events).
	WhenOnlineSkip = "skip"
	// WhenOnlineSilent sends online users a silent push (content-available,
	// no alert, no sound) so the app can refresh without a banner.
	WhenOnlineSilent = "silent"
)

// Bounds on request fields, in bytes. Tag and sub tag end up in queue index
// keys; the collapse id is APNs's limit.
const (
	MaxTagLen            = 255
	MaxIdempotencyKeyLen = 255
	MaxCollapseIDLen     = 64
	maxUserLen           = devices.MaxUserLen
	maxAppIDLen          = devices.MaxAppIDLen
)

// DeviceTarget is a device addressed directly by its token, without the
// registry (the backend keeps tokens itself).
type DeviceTarget struct {
	Platform string `json:"platform"`
	Token    string `json:"token"`
	AppID    string `json:"app_id,omitempty"`
	Sandbox  bool   `json:"sandbox,omitempty"`
	// Origin is stored with the job and handed back in the Report when
	// the token turns out dead (the Bitrix relay keeps the portal host
	// here). It is not part of the API: only in-process callers set it.
	Origin string `json:"-"`
}

// Request is one API notification: who gets it and what it says.
type Request struct {
	// Users are resolved to their registered devices; SkipUsers are left
	// out.
	Users, SkipUsers []string
	// Devices are direct targets, outside the registry.
	Devices []DeviceTarget
	// AppID limits the users' devices to one app; empty means all apps.
	AppID string
	// Notification is the content. Its ExpiresAt is set by Push from
	// Expiry; its CollapseID defaults to SubTag.
	Notification providers.Notification
	// Tag and SubTag allow Cancel by user+tag/sub_tag; a new notification
	// with the same user and SubTag replaces a still-queued one (collapse).
	Tag, SubTag string
	// SendAt defers sending; zero (or a past time) means now.
	SendAt time.Time
	// Expiry is how long after SendAt (or now) the push stays useful;
	// 0 means Options.DefaultExpiry.
	Expiry time.Duration
	// WhenOnline is send (default), skip or silent.
	WhenOnline string
	// IdempotencyKey: a second request with the same key within the
	// queue's idempotency window stores nothing and gets the first result.
	IdempotencyKey string

	// checked is left by a successful Validate: the payload it rendered,
	// so that Push, which validates again, does not render it again.
	checked *payloadReceipt
}

// payloadReceipt records a notification whose provider payloads passed
// checkPayload. It holds copies of the raw JSON fields: a caller that
// changes them in place after Validate gets them checked again.
type payloadReceipt struct {
	n              providers.Notification // the text fields; ExpiresAt zero, Badge, Data, APNs and FCM cleared
	badge          *int
	data, apns, fc string
	toAPNs, toFCM  bool
}

// matches reports whether n, going to the given providers, is the
// notification the receipt was issued for.
func (p *payloadReceipt) matches(n *providers.Notification, toAPNs, toFCM bool) bool {
	if p == nil || p.toAPNs != toAPNs || p.toFCM != toFCM ||
		string(n.Data) != p.data || string(n.APNs) != p.apns || string(n.FCM) != p.fc {
		return false
	}
	if (n.Badge == nil) != (p.badge == nil) || n.Badge != nil && *n.Badge != *p.badge {
		return false
	}
	o := &p.n
	return n.Title == o.Title && n.Subtitle == o.Subtitle && n.Body == o.Body && n.Sound == o.Sound &&
		n.Category == o.Category && n.ThreadID == o.ThreadID && n.ContentAvailable == o.ContentAvailable &&
		n.MutableContent == o.MutableContent && n.PushType == o.PushType && n.Priority == o.Priority &&
		n.CollapseID == o.CollapseID
}

func newReceipt(n *providers.Notification, toAPNs, toFCM bool) *payloadReceipt {
	p := &payloadReceipt{n: *n, data: string(n.Data), apns: string(n.APNs), fc: string(n.FCM), toAPNs: toAPNs, toFCM: toFCM}
	if n.Badge != nil {
		b := *n.Badge
		p.badge = &b
	}
	p.n.ExpiresAt, p.n.Badge, p.n.Data, p.n.APNs, p.n.FCM = time.Time{}, nil, nil, nil, nil
	return p
}

// FieldError is a request that cannot be accepted, naming the field (as
// the API spells it, relative to the notification: "push_type",
// "devices[1].token"; empty for the notification as a whole).
type FieldError struct {
	Field, Message string
	// TooLarge is set when the payload exceeds a provider's limit (the
	// API's 413 rather than 400).
	TooLarge bool
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// Validate checks r as Push would, without touching any store: every
// field, and the payload against the limits of each provider it may go to
// (APNs 4096 bytes, 5120 for VoIP; FCM 4096 bytes of data). The error is a
// *FieldError.
//
// A request that passes carries a receipt of its payload check: Push
// skips rendering it again (the API validates each request before
// calling Push) unless the notification or its targets changed since.
func (s *Service) Validate(r *Request) error {
	if fe := s.validate(r); fe != nil {
		return fe
	}
	return nil
}

func (s *Service) validate(r *Request) *FieldError {
	if len(r.Users) == 0 && len(r.Devices) == 0 {
		return fieldErr("users", "users or devices required")
	}
	for _, list := range []struct {
		name  string
		users []string
	}{{"users", r.Users}, {"skip_users", r.SkipUsers}} {
		for i, u := range list.users {
			if msg := checkText(u, maxUserLen, true); msg != "" {
				return fieldErr(list.name+"["+strconv.Itoa(i)+"]", "%s", msg)
			}
		}
	}
	n := &r.Notification
	if n.PushType == providers.PushVoIP {
		for i, d := range r.Devices {
			if d.Platform != providers.PlatformAPNs {
				return fieldErr("devices["+strconv.Itoa(i)+"].platform", "voip pushes go to APNs devices only")
			}
		}
	}
	for i, d := range r.Devices {
		err := devices.Validate(devices.Device{User: "-", Platform: d.Platform, Token: d.Token, AppID: d.AppID})
		var ve *devices.ValidationError
		if errors.As(err, &ve) {
			return fieldErr("devices["+strconv.Itoa(i)+"]."+ve.Field, "%s", ve.Message)
		} else if err != nil {
			return fieldErr("devices["+strconv.Itoa(i)+"]", "%v", err)
		}
	}
	texts := []struct {
		name, v string
		max     int
	}{
		{"app_id", r.AppID, maxAppIDLen}, {"tag", r.Tag, MaxTagLen}, {"sub_tag", r.SubTag, MaxTagLen},
		{"idempotency_key", r.IdempotencyKey, MaxIdempotencyKeyLen},
		{"collapse_id", n.CollapseID, MaxCollapseIDLen},
	}
	for _, t := range texts {
		if msg := checkText(t.v, t.max, false); msg != "" {
			return fieldErr(t.name, "%s", msg)
		}
	}
	switch r.WhenOnline {
	case "", WhenOnlineSend, WhenOnlineSkip, WhenOnlineSilent:
	default:
		return fieldErr("when_online", "must be send, skip or silent")
	}
	switch n.PushType {
	case "", providers.PushAlert, providers.PushBackground, providers.PushVoIP:
	default:
		return fieldErr("push_type", "must be alert, background or voip")
	}
	switch n.Priority {
	case "", providers.PriorityHigh, providers.PriorityNormal:
	default:
		return fieldErr("priority", "must be high or normal")
	}
	if n.Badge != nil && *n.Badge < 0 {
		return fieldErr("badge", "must not be negative")
	}
	for _, o := range []struct {
		name string
		raw  []byte
	}{{"data", n.Data}, {"apns", n.APNs}, {"fcm", n.FCM}} {
		if len(o.raw) > 0 && !isObject(o.raw) {
			return fieldErr(o.name, "must be a JSON object")
		}
	}
	if r.Expiry < 0 {
		return fieldErr("expiry", "must not be negative")
	}
	if r.Expiry > s.opts.MaxExpiry {
		return fieldErr("expiry", "must be at most %d seconds", int64(s.opts.MaxExpiry/time.Second))
	}
	if !r.SendAt.IsZero() && r.SendAt.Sub(s.opts.Now()) > s.opts.MaxExpiry {
		return fieldErr("send_at", "must be at most %d seconds ahead", int64(s.opts.MaxExpiry/time.Second))
	}
	return s.checkPayload(r)
}

// checkPayload renders the notification as each provider it may reach
// would (overrides merged), so that size limits and provider-specific
// mistakes surface as a 400/413 now, not as a dead letter later. A
// notification that passes gets a receipt, and one whose receipt still
// matches is not rendered again.
func (s *Service) checkPayload(r *Request) *FieldError {
	toAPNs, toFCM := len(r.Users) > 0, len(r.Users) > 0
	for _, d := range r.Devices {
		toAPNs = toAPNs || d.Platform == providers.PlatformAPNs
		toFCM = toFCM || d.Platform == providers.PlatformFCM
	}
	n := r.Notification
	n.ExpiresAt = time.Time{}
	if n.PushType == providers.PushVoIP {
		toFCM = false // VoIP devices are APNs only: FCM devices are skipped
	}
	if r.checked.matches(&n, toAPNs, toFCM) {
		return nil
	}
	if fe := checkRendered(&n, toAPNs, toFCM); fe != nil {
		r.checked = nil
		return fe
	}
	r.checked = newReceipt(&n, toAPNs, toFCM)
	return nil
}

// checkRendered renders n for APNs and/or FCM and maps a failure to the
// field it is about.
func checkRendered(n *providers.Notification, toAPNs, toFCM bool) *FieldError {
	if toAPNs {
		err := apns.CheckNotification(n)
		var tl *apns.PayloadTooLargeError
		switch {
		case errors.As(err, &tl):
			return &FieldError{Message: fmt.Sprintf("APNs payload is %d bytes, the limit is %d", tl.Size, tl.Limit), TooLarge: true}
		case err != nil:
			return &FieldError{Field: overrideField(n, "apns"), Message: err.Error()}
		}
	}
	if toFCM {
		err := fcm.CheckPayload(n)
		switch {
		case errors.Is(err, fcm.ErrPayloadTooLarge):
			return &FieldError{Field: "data", Message: err.Error(), TooLarge: true}
		case err != nil:
			return &FieldError{Field: overrideField(n, "fcm"), Message: err.Error()}
		}
	}
	return nil
}

// overrideField guesses which field a provider's rendering error is about:
// the raw overrides when there are any, else the custom data.
func overrideField(n *providers.Notification, name string) string {
	switch {
	case name == "apns" && len(n.APNs) > 0, name == "fcm" && len(n.FCM) > 0:
		return name
	case len(n.Data) > 0:
		return "data"
	}
	return ""
}

func isObject(raw []byte) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) >= 2 && raw[0] == '{'
}

// checkText accepts UTF-8 text of at most max bytes without control
// characters (NUL separates parts of queue and registry index keys).
func checkText(s string, max int, required bool) string {
	if s == "" {
		if required {
			return "must not be empty"
		}
		return ""
	}
	if len(s) > max {
		return "must be at most " + strconv.Itoa(max) + " bytes"
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}
