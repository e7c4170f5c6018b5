package fcm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"firebase.google.com/go/v4/messaging"

	"github.com/pushpull/pushpull/providers"
)

// MaxDataBytes is FCM's limit on a message's data payload: the bytes of
// every key and value together.
const MaxDataBytes = 4096

// maxTTL is the longest time FCM keeps a message (28 days).
const maxTTL = 28 * 24 * time.Hour

var (
	// ErrInvalidMessage is wrapped by errors about a notification that
	// cannot become a valid FCM message (bad priority, VoIP push type,
	// reserved data key, malformed overrides, ...).
	ErrInvalidMessage = errors.New("fcm: invalid message")
	// ErrPayloadTooLarge is wrapped when the data payload exceeds
	// MaxDataBytes.
	ErrPayloadTooLarge = errors.New("fcm: data payload too large")
)

// PayloadSize builds the FCM message for n (overrides included) and
// returns the size of its data payload as FCM counts it against
// MaxDataBytes. The error wraps ErrInvalidMessage when n cannot be sent.
func PayloadSize(n *providers.Notification) (int, error) {
	m, err := buildMessage(n, time.Now())
	if err != nil {
		return 0, err
	}
	size := dataSize(m.Data)
	if m.Android != nil {
		size = max(size, dataSize(m.Android.Data))
	}
	return size, nil
}

// CheckPayload reports whether n can be sent over FCM: nil, or an error
// wrapping ErrInvalidMessage or ErrPayloadTooLarge (the API's 413).
func CheckPayload(n *providers.Notification) error {
	size, err := PayloadSize(n)
	if err != nil {
		return err
	}
	if size > MaxDataBytes {
		return fmt.Errorf("%w: %d bytes of data, limit %d", ErrPayloadTooLarge, size, MaxDataBytes)
	}
	return nil
}

func dataSize(d map[string]string) int {
	n := 0
	for k, v := range d {
		n += len(k) + len(v)
	}
	return n
}

// buildMessage maps a notification to an FCM v1 message without a target.
// The typed message is built first; raw overrides, when present, are then
// applied to its JSON form as a JSON Merge Patch (RFC 7396: objects merge
// key by key, null deletes) and the result is decoded back into the typed
// message, whose JSON tags follow the v1 wire format. Override fields the
// SDK does not model would be dropped silently by that decoding, so they
// are reported as ErrInvalidMessage instead.
func buildMessage(n *providers.Notification, now time.Time) (*messaging.Message, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: no notification", ErrInvalidMessage)
	}
	pushType := n.PushType
	switch pushType {
	case "":
		pushType = providers.PushAlert
	case providers.PushAlert, providers.PushBackground:
	case providers.PushVoIP:
		return nil, fmt.Errorf("%w: push type %q is APNs-only", ErrInvalidMessage, pushType)
	default:
		return nil, fmt.Errorf("%w: unknown push type %q", ErrInvalidMessage, pushType)
	}
	priority := n.Priority
	switch priority {
	case "":
		priority = providers.PriorityHigh
	case providers.PriorityHigh, providers.PriorityNormal:
	default:
		return nil, fmt.Errorf("%w: unknown priority %q", ErrInvalidMessage, priority)
	}
	data, err := stringifyData(n.Data)
	if err != nil {
		return nil, err
	}
	background := pushType == providers.PushBackground

	android := &messaging.AndroidConfig{Priority: priority, CollapseKey: n.CollapseID}
	headers := map[string]string{"apns-push-type": pushType, "apns-priority": "10"}
	if background || priority == providers.PriorityNormal {
		// Apple requires priority 5 for background pushes.
		headers["apns-priority"] = "5"
	}
	if !n.ExpiresAt.IsZero() {
		ttl := min(max(n.ExpiresAt.Sub(now).Truncate(time.Second), 0), maxTTL)
		android.TTL = &ttl
		headers["apns-expiration"] = strconv.FormatInt(n.ExpiresAt.Unix(), 10)
	}
	if n.CollapseID != "" {
		headers["apns-collapse-id"] = n.CollapseID
	}
	aps := &messaging.Aps{ContentAvailable: n.ContentAvailable || background}
	m := &messaging.Message{Data: data, Android: android,
		APNS: &messaging.APNSConfig{Headers: headers, Payload: &messaging.APNSPayload{Aps: aps}}}
	if !background {
		// A background push is data-only: any notification block would
		// make Android show it and iOS treat it as an alert.
		if n.Title != "" || n.Body != "" {
			m.Notification = &messaging.Notification{Title: n.Title, Body: n.Body}
		}
		if n.Sound != "" || n.CollapseID != "" {
			android.Notification = &messaging.AndroidNotification{Sound: n.Sound, Tag: n.CollapseID}
		}
		if n.Title != "" || n.Subtitle != "" || n.Body != "" {
			aps.Alert = &messaging.ApsAlert{Title: n.Title, SubTitle: n.Subtitle, Body: n.Body}
		}
		aps.Badge = n.Badge
		aps.Sound = n.Sound
		aps.Category = n.Category
		aps.ThreadID = n.ThreadID
		aps.MutableContent = n.MutableContent
	}
	if hasOverrides(n.FCM) {
		return applyOverrides(m, n.FCM)
	}
	return m, nil
}

// reservedDataKey reports keys FCM refuses in the data payload.
func reservedDataKey(k string) bool {
	return k == "from" || k == "message_type" ||
		strings.HasPrefix(k, "google.") || strings.HasPrefix(k, "gcm.notification.")
}

// stringifyData turns the custom data object into FCM's string map: string
// values stay as they are, any other JSON value becomes its JSON text
// ({"chat":17} -> "chat":"17", null -> "null").
func stringifyData(raw json.RawMessage) (map[string]string, error) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil {
		return nil, fmt.Errorf("%w: data must be a JSON object: %w", ErrInvalidMessage, err)
	}
	if len(obj) == 0 {
		return nil, nil
	}
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		if reservedDataKey(k) {
			return nil, fmt.Errorf("%w: data key %q is reserved by FCM", ErrInvalidMessage, k)
		}
		if len(v) > 0 && v[0] == '"' {
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, fmt.Errorf("%w: data %q: %w", ErrInvalidMessage, k, err)
			}
			out[k] = s
			continue
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, fmt.Errorf("%w: data %q: %w", ErrInvalidMessage, k, err)
		}
		out[k] = buf.String()
	}
	return out, nil
}

func hasOverrides(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	return len(raw) > 0 && !bytes.Equal(raw, []byte("null")) && !bytes.Equal(raw, []byte("{}"))
}

func applyOverrides(m *messaging.Message, raw json.RawMessage) (*messaging.Message, error) {
	var patch map[string]any
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // keep big integers exact through the merge
	err := dec.Decode(&patch)
	if err == nil && patch == nil {
		err = errors.New("not an object")
	}
	if err != nil {
		return nil, fmt.Errorf("%w: fcm overrides must be a JSON object: %w", ErrInvalidMessage, err)
	}
	// The target is the job's device; an override may not redirect it.
	for _, k := range []string{"token", "topic", "condition"} {
		if _, ok := patch[k]; ok {
			return nil, fmt.Errorf("%w: fcm overrides may not set %q", ErrInvalidMessage, k)
		}
	}
	if err := checkOverrideHeaders(patch); err != nil {
		return nil, err
	}
	base, err := toMap(m)
	if err != nil {
		return nil, err
	}
	mergePatch(base, patch)
	stringifyMapValues(base, "data")
	if a, ok := base["android"].(map[string]any); ok {
		stringifyMapValues(a, "data")
	}
	if d, ok := base["data"].(map[string]any); ok {
		for k := range d {
			if reservedDataKey(k) {
				return nil, fmt.Errorf("%w: data key %q is reserved by FCM", ErrInvalidMessage, k)
			}
		}
	}
	merged, err := json.Marshal(base)
	if err != nil {
		return nil, fmt.Errorf("%w: fcm overrides: %w", ErrInvalidMessage, err)
	}
	out := new(messaging.Message)
	if err := json.Unmarshal(merged, out); err != nil {
		return nil, fmt.Errorf("%w: fcm overrides: %w", ErrInvalidMessage, err)
	}
	// Whatever the typed message cannot carry would vanish without a word:
	// compare what survives with what was asked for.
	back, err := toMap(out)
	if err != nil {
		return nil, err
	}
	if path := lostField(base, back, "fcm"); path != "" {
		return nil, fmt.Errorf("%w: override %s is not supported by the FCM client", ErrInvalidMessage, path)
	}
	return out, nil
}

func toMap(m *messaging.Message) (map[string]any, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("%w: encode message: %w", ErrInvalidMessage, err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		return nil, fmt.Errorf("%w: encode message: %w", ErrInvalidMessage, err)
	}
	return out, nil
}

// mergePatch applies an RFC 7396 JSON Merge Patch to dst in place.
func mergePatch(dst, patch map[string]any) {
	for k, pv := range patch {
		if pv == nil {
			delete(dst, k)
			continue
		}
		pm, pIsMap := pv.(map[string]any)
		dm, dIsMap := dst[k].(map[string]any)
		switch {
		case pIsMap && dIsMap:
			mergePatch(dm, pm)
		case pIsMap:
			fresh := make(map[string]any, len(pm))
			mergePatch(fresh, pm)
			dst[k] = fresh
		default:
			dst[k] = pv
		}
	}
}

// stringifyMapValues makes obj[key], if an object, a string map in place.
func stringifyMapValues(obj map[string]any, key string) {
	d, ok := obj[key].(map[string]any)
	if !ok {
		return
	}
	for k, v := range d {
		if _, isString := v.(string); isString {
			continue
		}
		b, err := json.Marshal(v)
		if err != nil {
			b = []byte("null")
		}
		d[k] = string(b)
	}
}

// lostField returns the path of the first non-empty field of want that got
// lacks, or "".
func lostField(want, got map[string]any, path string) string {
	for k, wv := range want {
		if isEmptyJSON(wv) {
			continue
		}
		gv, ok := got[k]
		if !ok {
			return path + "." + k
		}
		wm, wIsMap := wv.(map[string]any)
		gm, gIsMap := gv.(map[string]any)
		if wIsMap && gIsMap {
			if p := lostField(wm, gm, path+"."+k); p != "" {
				return p
			}
		}
	}
	return ""
}

func isEmptyJSON(v any) bool {
	switch t := v.(type) {
	case nil:
		return true
	case bool:
		return !t
	case string:
		return t == ""
	case json.Number:
		f, err := t.Float64()
		return err == nil && f == 0
	case float64:
		return t == 0
	case map[string]any:
		for _, v := range t {
			if !isEmptyJSON(v) {
				return false
			}
		}
		return true
	case []any:
		return len(t) == 0
	}
	return false
}

// checkOverrideHeaders refuses header names and values in the webpush and
// apns blocks of an override that FCM would refuse later (a dead letter
// after retries) or that could not be an HTTP header at all: control
// characters (CR/LF included), non-token names, non-string values.
func checkOverrideHeaders(patch map[string]any) error {
	for _, block := range []string{"webpush", "apns"} {
		b, ok := patch[block].(map[string]any)
		if !ok {
			continue
		}
		raw, ok := b["headers"]
		if !ok || raw == nil {
			continue
		}
		h, ok := raw.(map[string]any)
		if !ok {
			return fmt.Errorf("%w: fcm overrides: %s.headers must be an object of strings", ErrInvalidMessage, block)
		}
		for name, v := range h {
			value, ok := v.(string)
			if !ok {
				return fmt.Errorf("%w: fcm overrides: %s.headers.%s must be a string", ErrInvalidMessage, block, name)
			}
			if !validHeaderName(name) {
				return fmt.Errorf("%w: fcm overrides: %s.headers: %q is not a header name", ErrInvalidMessage, block, name)
			}
			for _, r := range value {
				if r < 0x20 && r != '\t' || r == 0x7f {
					return fmt.Errorf("%w: fcm overrides: %s.headers.%s holds a control character", ErrInvalidMessage, block, name)
				}
			}
		}
	}
	return nil
}

// validHeaderName reports whether s is an RFC 9110 token.
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		case strings.ContainsRune("!#$%&'*+-.^_`|~", r):
		default:
			return false
		}
	}
	return true
}
