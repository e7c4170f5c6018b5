package relay

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/pushpull/pushpull/providers"
)

var errNotObject = errors.New("not a JSON object")

// appleNotification converts an Apple payload: aps.alert (object, or a
// string for VoIP), badge, sound, category, content-available and
// mutable-content map to their fields; every other top-level key (params,
// the ADVANCED_PARAMS keys, target) is kept as custom data.
func appleNotification(payload []byte, voip bool, expires time.Time) (built, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(payload, &top); err != nil || top == nil {
		return built{}, fmt.Errorf("apple payload: %w", orNotObject(err))
	}
	apsRaw, ok := top["aps"]
	if !ok {
		return built{}, errors.New("apple payload: no aps")
	}
	delete(top, "aps")
	var aps struct {
		Alert            json.RawMessage `json:"alert"`
		Badge            *int            `json:"badge"`
		Sound            string          `json:"sound"`
		Category         string          `json:"category"`
		ContentAvailable int             `json:"content-available"`
		MutableContent   int             `json:"mutable-content"`
	}
	if err := json.Unmarshal(apsRaw, &aps); err != nil {
		return built{}, fmt.Errorf("apple aps: %w", err)
	}
	n := &providers.Notification{Badge: aps.Badge, Sound: aps.Sound, Category: aps.Category,
		ContentAvailable: aps.ContentAvailable == 1, MutableContent: aps.MutableContent == 1,
		ExpiresAt: expires, Priority: providers.PriorityHigh}
	alert := bytes.TrimSpace(aps.Alert)
	switch {
	case len(alert) == 0 || string(alert) == "null":
	case alert[0] == '"':
		if err := json.Unmarshal(alert, &n.Body); err != nil {
			return built{}, fmt.Errorf("apple alert: %w", err)
		}
		// Body is the summary; the override keeps the alert a plain
		// string on the wire, as the app's VoIP handler reads it.
		over, err := json.Marshal(map[string]any{"aps": map[string]string{"alert": validUTF8(n.Body)}})
		if err != nil {
			return built{}, fmt.Errorf("apple alert: %w", err)
		}
		n.APNs = over
	default:
		var a struct {
			Title string `json:"title"`
			Body  string `json:"body"`
		}
		if err := json.Unmarshal(alert, &a); err != nil {
			return built{}, fmt.Errorf("apple alert: %w", err)
		}
		n.Title, n.Body = a.Title, a.Body
	}
	n.Title, n.Body = validUTF8(n.Title), validUTF8(n.Body)
	switch {
	case voip:
		n.PushType = providers.PushVoIP
	case n.Title == "" && n.Body == "":
		// The module's silent push: content-available only. APNs wants
		// priority 5 for it.
		n.PushType, n.Priority, n.ContentAvailable = providers.PushBackground, providers.PriorityNormal, true
	default:
		n.PushType = providers.PushAlert
	}
	if len(top) > 0 {
		data, err := json.Marshal(top)
		if err != nil {
			return built{}, fmt.Errorf("apple custom data: %w", err)
		}
		n.Data = data
	}
	return built{n: n, title: n.Title, body: n.Body}, nil
}

// validUTF8 repairs text the module cut in the middle of a character.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "")
}

func orNotObject(err error) error {
	if err == nil {
		return errNotObject
	}
	return err
}

// androidData turns a Google data object into FCM v1's string map, the
// shape the Bitrix app reads on every Android path: null becomes "" (FCM
// v1 refuses null), strings stay, anything else (badge number,
// messageParams object) becomes its compact JSON text.
func androidData(obj map[string]json.RawMessage) (json.RawMessage, string, string, error) {
	out := make(map[string]string, len(obj))
	for k, v := range obj {
		v = bytes.TrimSpace(v)
		switch {
		case len(v) == 0 || string(v) == "null":
			out[k] = ""
		case v[0] == '"':
			var s string
			if err := json.Unmarshal(v, &s); err != nil {
				return nil, "", "", fmt.Errorf("data %q: %w", k, err)
			}
			out[k] = validUTF8(s)
		default:
			var buf bytes.Buffer
			if err := json.Compact(&buf, v); err != nil {
				return nil, "", "", fmt.Errorf("data %q: %w", k, err)
			}
			out[k] = buf.String()
		}
	}
	data, err := json.Marshal(out)
	if err != nil {
		return nil, "", "", err
	}
	return data, out["contentTitle"], out["contentText"], nil
}

// androidFrames builds the frames of one Google/Huawei payload, one per
// token, sharing the notification.
func (w *walker) androidFrames(key string, platform string, tokens []string, ttl time.Duration, build func(expires time.Time) (built, error)) ([]Frame, Reason, string) {
	var expires time.Time
	if ttl > 0 {
		expires = w.now.Add(ttl)
	}
	b, err := w.shared(key, func() (built, error) { return build(expires) })
	if err != nil {
		return nil, ReasonBadJSON, err.Error()
	}
	frames := make([]Frame, 0, len(tokens))
	for _, t := range tokens {
		if t == "" {
			continue
		}
		frames = append(frames, Frame{Platform: platform, Token: t, ExpiresAt: expires,
			Title: b.title, Body: b.body, Notification: b.n})
	}
	if len(frames) == 0 {
		return nil, ReasonNoToken, ""
	}
	return frames, "", ""
}

func priorityOf(p string) string {
	if p == providers.PriorityNormal {
		return providers.PriorityNormal
	}
	return providers.PriorityHigh
}

// decodeGoogleLegacy converts the legacy GCM JSON {data, time_to_live,
// priority, registration_ids} to the FCM v1 data shape.
func (w *walker) decodeGoogleLegacy(body []byte) ([]Frame, Reason, string) {
	var m struct {
		Data            json.RawMessage `json:"data"`
		TTL             *int64          `json:"time_to_live"`
		Priority        string          `json:"priority"`
		RegistrationIDs []string        `json:"registration_ids"`
		To              string          `json:"to"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, ReasonBadJSON, err.Error()
	}
	tokens := m.RegistrationIDs
	if m.To != "" {
		tokens = append(tokens, m.To)
	}
	var ttl time.Duration
	if m.TTL != nil && *m.TTL > 0 {
		ttl = time.Duration(min(*m.TTL, 1<<31)) * time.Second
	}
	key := "g\x00" + strconv.FormatInt(int64(ttl), 10) + "\x00" + m.Priority + "\x00" + string(m.Data)
	return w.androidFrames(key, providers.PlatformFCM, tokens, ttl, func(expires time.Time) (built, error) {
		return googleNotification(m.Data, m.Priority, expires)
	})
}

func googleNotification(raw json.RawMessage, priority string, expires time.Time) (built, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
		return built{}, fmt.Errorf("google data: %w", orNotObject(err))
	}
	data, title, body, err := androidData(obj)
	if err != nil {
		return built{}, err
	}
	n := &providers.Notification{Data: data, Priority: priorityOf(priority), ExpiresAt: expires}
	return built{n: n, title: title, body: body}, nil
}

// decodeFCMv1 reads {message:{data, android:{ttl:"Ns", priority}, token}}.
func (w *walker) decodeFCMv1(body []byte) ([]Frame, Reason, string) {
	var m struct {
		Message *struct {
			Data    json.RawMessage `json:"data"`
			Android struct {
				TTL      string `json:"ttl"`
				Priority string `json:"priority"`
			} `json:"android"`
			Token string `json:"token"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, ReasonBadJSON, err.Error()
	}
	if m.Message == nil {
		return nil, ReasonBadJSON, "no message"
	}
	ttl, ok := parseTTL(m.Message.Android.TTL)
	if !ok {
		return nil, ReasonBadJSON, "android.ttl " + strconv.Quote(m.Message.Android.TTL)
	}
	msg := m.Message
	key := "f\x00" + strconv.FormatInt(int64(ttl), 10) + "\x00" + msg.Android.Priority + "\x00" + string(msg.Data)
	return w.androidFrames(key, providers.PlatformFCM, []string{msg.Token}, ttl, func(expires time.Time) (built, error) {
		return googleNotification(msg.Data, msg.Android.Priority, expires)
	})
}

// decodeHuawei reads {message:{data:"<json>", android:{ttl:"N"}, token:[t]}}
// and keeps the data string as it is: it is what Huawei apps receive.
func (w *walker) decodeHuawei(body []byte) ([]Frame, Reason, string) {
	var m struct {
		Message *struct {
			Data    string `json:"data"`
			Android struct {
				TTL string `json:"ttl"`
			} `json:"android"`
			Token []string `json:"token"`
		} `json:"message"`
	}
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, ReasonBadJSON, err.Error()
	}
	if m.Message == nil {
		return nil, ReasonBadJSON, "no message"
	}
	ttl, ok := parseTTL(m.Message.Android.TTL)
	if !ok {
		return nil, ReasonBadJSON, "android.ttl " + strconv.Quote(m.Message.Android.TTL)
	}
	data := m.Message.Data
	key := "h\x00" + strconv.FormatInt(int64(ttl), 10) + "\x00" + data
	return w.androidFrames(key, platformHMS, m.Message.Token, ttl, func(expires time.Time) (built, error) {
		var obj map[string]json.RawMessage
		if err := json.Unmarshal([]byte(data), &obj); err != nil || obj == nil {
			return built{}, fmt.Errorf("huawei data: %w", orNotObject(err))
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, []byte(data)); err != nil {
			return built{}, fmt.Errorf("huawei data: %w", err)
		}
		var title, text string
		_ = json.Unmarshal(obj["contentTitle"], &title) // null or absent: ""
		_ = json.Unmarshal(obj["contentText"], &text)
		n := &providers.Notification{Data: buf.Bytes(), Priority: providers.PriorityHigh, ExpiresAt: expires}
		return built{n: n, title: validUTF8(title), body: validUTF8(text)}, nil
	})
}

// parseTTL reads "7200s" (FCM v1) or "7200" (Huawei); "" means none.
func parseTTL(s string) (time.Duration, bool) {
	if s == "" {
		return 0, true
	}
	s = strings.TrimSuffix(s, "s")
	secs, err := strconv.ParseFloat(s, 64)
	if err != nil || secs < 0 || secs > 1<<31 {
		return 0, false
	}
	return time.Duration(secs * float64(time.Second)).Truncate(time.Second), true
}
