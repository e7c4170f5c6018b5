package apns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// Payload limits of APNs, in bytes of the JSON body.
const (
	MaxPayloadSize     = 4096
	MaxVoIPPayloadSize = 5120
)

// Errors of rendering a notification for APNs.
var (
	// ErrInvalidNotification: the notification cannot be sent to APNs as
	// it is (bad data, bad override, unknown push type, ...).
	ErrInvalidNotification = errors.New("apns: invalid notification")
	// ErrPayloadTooLarge: the rendered payload exceeds the APNs limit.
	ErrPayloadTooLarge = errors.New("apns: payload too large")
)

// PayloadTooLargeError tells by how much a payload is too large. It
// matches ErrPayloadTooLarge with errors.Is.
type PayloadTooLargeError struct {
	Size, Limit int
}

// Error reports the size and the limit.
func (e *PayloadTooLargeError) Error() string {
	return fmt.Sprintf("apns: payload is %d bytes, the limit is %d", e.Size, e.Limit)
}

// Is makes errors.Is(err, ErrPayloadTooLarge) true.
func (e *PayloadTooLargeError) Is(target error) bool { return target == ErrPayloadTooLarge }

// PayloadSize renders n as APNs would receive it and returns the size of
// the JSON body, or an error wrapping ErrInvalidNotification.
func PayloadSize(n *providers.Notification) (int, error) {
	r, err := render(n)
	if err != nil {
		return 0, err
	}
	return len(r.payload), nil
}

// CheckNotification reports whether n can be sent to APNs: nil, an error
// wrapping ErrInvalidNotification, or a *PayloadTooLargeError (4096 bytes,
// 5120 for VoIP). The API calls it before queueing.
func CheckNotification(n *providers.Notification) error {
	r, err := render(n)
	if err != nil {
		return err
	}
	return r.checkSize()
}

// rendered is a notification turned into an APNs body and headers; it does
// not depend on the target, so a batch renders a shared notification once.
type rendered struct {
	payload    []byte
	pushType   string // final apns-push-type
	priority   int
	collapseID string
	expiration time.Time // zero: no header
	topic      string    // override; "" means the app's topic for pushType
	apnsID     string
}

func (r *rendered) checkSize() error {
	limit := MaxPayloadSize
	if r.pushType == providers.PushVoIP {
		limit = MaxVoIPPayloadSize
	}
	if len(r.payload) > limit {
		return &PayloadTooLargeError{Size: len(r.payload), Limit: limit}
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidNotification, fmt.Sprintf(format, args...))
}

// render maps the unified fields, then merges the raw overrides last. The
// common case (no override) takes renderDirect.
func render(n *providers.Notification) (*rendered, error) {
	if n == nil {
		return nil, invalidf("no notification")
	}
	if r, ok := renderDirect(n); ok {
		return r, nil
	}
	return renderMaps(n)
}

// renderMaps is the general path: a map per JSON object, overrides merged
// into them, encoded through encoding/json.
func renderMaps(n *providers.Notification) (*rendered, error) {
	r := &rendered{collapseID: n.CollapseID}
	switch n.PushType {
	case "", providers.PushAlert:
		r.pushType = providers.PushAlert
	case providers.PushBackground, providers.PushVoIP:
		r.pushType = n.PushType
	default:
		return nil, invalidf("push_type %q: want alert, background or voip", n.PushType)
	}
	switch n.Priority {
	case "", providers.PriorityHigh:
		r.priority = 10
	case providers.PriorityNormal:
		r.priority = 5
	default:
		return nil, invalidf("priority %q: want high or normal", n.Priority)
	}
	aps := map[string]any{}
	if r.pushType == providers.PushBackground {
		// Apple refuses priority 10 for background pushes and drops them
		// without content-available.
		r.priority = 5
		aps["content-available"] = 1
	}
	if !n.ExpiresAt.IsZero() {
		r.expiration = n.ExpiresAt
	}
	alert := map[string]any{}
	setIf(alert, "title", n.Title)
	setIf(alert, "subtitle", n.Subtitle)
	setIf(alert, "body", n.Body)
	if len(alert) > 0 {
		aps["alert"] = alert
	}
	if n.Badge != nil {
		aps["badge"] = *n.Badge
	}
	setIf(aps, "sound", n.Sound)
	setIf(aps, "category", n.Category)
	setIf(aps, "thread-id", n.ThreadID)
	if n.ContentAvailable {
		aps["content-available"] = 1
	}
	if n.MutableContent {
		aps["mutable-content"] = 1
	}
	payload := map[string]any{}
	if len(n.Data) > 0 {
		data, err := decodeObject(n.Data)
		if err != nil {
			return nil, invalidf("data: %v", err)
		}
		if _, ok := data["aps"]; ok {
			return nil, invalidf(`data: the "aps" key is reserved; use the apns override`)
		}
		payload = data
	}
	payload["aps"] = aps
	if len(n.APNs) > 0 {
		over, err := decodeObject(n.APNs)
		if err != nil {
			return nil, invalidf("apns: %v", err)
		}
		if h, ok := over["headers"]; ok {
			delete(over, "headers")
			if err := r.applyHeaders(h); err != nil {
				return nil, err
			}
		}
		merge(payload, over)
		if _, ok := payload["aps"].(map[string]any); !ok {
			return nil, invalidf(`apns: "aps" must stay an object`)
		}
	}
	if len(r.collapseID) > 64 {
		return nil, invalidf("collapse_id is %d bytes, the limit is 64", len(r.collapseID))
	}
	var buf bytes.Buffer
	// HTML-escaped like apns2 sends it: it re-encodes the body with
	// json.Marshal, which escapes <, > and &, so the size measured here is
	// the size APNs sees.
	enc := json.NewEncoder(&buf)
	if err := enc.Encode(payload); err != nil {
		return nil, invalidf("encode payload: %v", err)
	}
	r.payload = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return r, nil
}

func setIf(m map[string]any, k, v string) {
	if v != "" {
		m[k] = v
	}
}

// decodeObject decodes a JSON object, keeping numbers exact.
func decodeObject(raw json.RawMessage) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, errors.New("not a JSON object")
	}
	if dec.More() {
		return nil, errors.New("trailing data after the object")
	}
	return m, nil
}

// merge deep-merges src into dst: objects merge key by key, any other value
// replaces, and null removes the key (so an override can drop a field).
func merge(dst, src map[string]any) {
	for k, v := range src {
		if v == nil {
			delete(dst, k)
			continue
		}
		if sv, ok := v.(map[string]any); ok {
			if dv, ok := dst[k].(map[string]any); ok {
				merge(dv, sv)
				continue
			}
		}
		dst[k] = v
	}
}

// applyHeaders takes the "headers" override. Only headers apns2 can send
// are accepted, and values are checked here: net/http would refuse a value
// with CR/LF at send time, which would look like a transport failure and be
// retried forever.
func (r *rendered) applyHeaders(h any) error {
	m, ok := h.(map[string]any)
	if !ok {
		return invalidf(`apns.headers: want an object of header: value`)
	}
	for name, v := range m {
		var val string
		switch x := v.(type) {
		case string:
			val = x
		case json.Number:
			val = x.String()
		default:
			return invalidf("apns.headers.%s: want a string or a number", name)
		}
		if strings.ContainsAny(val, "\r\n\x00") {
			return invalidf("apns.headers.%s: control character in value", name)
		}
		var err error
		switch strings.ToLower(name) {
		case "apns-topic":
			r.topic = val
		case "apns-id":
			r.apnsID = val
		case "apns-collapse-id":
			r.collapseID = val
		case "apns-push-type":
			if !knownPushType(val) {
				return invalidf("apns.headers.apns-push-type: unknown push type %q", val)
			}
			r.pushType = val
		case "apns-priority":
			r.priority, err = strconv.Atoi(val)
			if err != nil || (r.priority != 1 && r.priority != 5 && r.priority != 10) {
				return invalidf("apns.headers.apns-priority: %q is not 1, 5 or 10", val)
			}
		case "apns-expiration":
			sec, err := strconv.ParseInt(val, 10, 64)
			if err != nil || sec < 0 {
				return invalidf("apns.headers.apns-expiration: %q is not a unix time", val)
			}
			// apns2 omits the header for times not after the epoch; one
			// nanosecond past it still formats as 0 ("do not store").
			r.expiration = time.Unix(sec, 0)
			if sec == 0 {
				r.expiration = time.Unix(0, 1)
			}
		default:
			return invalidf("apns.headers: %q is not a supported APNs header", name)
		}
	}
	return nil
}

// knownPushType lists the apns-push-type values APNs documents.
func knownPushType(s string) bool {
	switch s {
	case "alert", "background", "voip", "location", "complication", "fileprovider",
		"mdm", "liveactivity", "pushtotalk", "widgets", "controls":
		return true
	}
	return false
}

// topicFor derives the apns-topic from the bundle id for push types whose
// topic carries a suffix (Apple's rule); VoIP uses the app's VoIPTopic.
func topicFor(a *App, pushType string) string {
	switch pushType {
	case "voip":
		return a.VoIPTopic
	case "location":
		return a.Topic + ".location-query"
	case "complication":
		return a.Topic + ".complication"
	case "fileprovider":
		return a.Topic + ".pushkit.fileprovider"
	case "liveactivity":
		return a.Topic + ".push-type.liveactivity"
	case "pushtotalk":
		return a.Topic + ".voip-ptt"
	}
	return a.Topic
}
