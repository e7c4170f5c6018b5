package hms

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// MaxMessageBytes is HMS's limit on a message body without its tokens.
const MaxMessageBytes = 4096

// maxTTL is the longest time HMS keeps a message for an offline device.
const maxTTL = 15 * 24 * time.Hour

var (
	// ErrInvalidMessage is wrapped by errors about a notification that
	// cannot become a valid HMS message (VoIP push type, bad priority, data
	// that is not a JSON object, nothing to show, already expired, ...).
	ErrInvalidMessage = errors.New("hms: invalid message")
	// ErrPayloadTooLarge is wrapped when the message exceeds
	// MaxMessageBytes (HMS would answer 80300008).
	ErrPayloadTooLarge = errors.New("hms: message too large")
)

// wireMessage is the v1 "message" object. Tokens are added per request.
type wireMessage struct {
	Data    string       `json:"data,omitempty"`
	Android *wireAndroid `json:"android,omitempty"`
	Token   []string     `json:"token"`
}

type wireAndroid struct {
	CollapseKey  *int              `json:"collapse_key,omitempty"`
	Urgency      string            `json:"urgency,omitempty"`
	TTL          string            `json:"ttl,omitempty"`
	Notification *wireNotification `json:"notification,omitempty"`
}

type wireNotification struct {
	Title        string      `json:"title,omitempty"`
	Body         string      `json:"body,omitempty"`
	Sound        string      `json:"sound,omitempty"`
	DefaultSound bool        `json:"default_sound"`
	Tag          string      `json:"tag,omitempty"`
	Group        string      `json:"group,omitempty"`
	ClickAction  clickAction `json:"click_action"`
	Badge        *wireBadge  `json:"badge,omitempty"`
}

// clickAction type 3 opens the app, the behaviour other platforms have.
type clickAction struct {
	Type int `json:"type"`
}

type wireBadge struct {
	SetNum int    `json:"set_num"`
	Class  string `json:"class"`
}

type sendBody struct {
	ValidateOnly bool         `json:"validate_only"`
	Message      *wireMessage `json:"message"`
}

// buildMessage maps a notification to an HMS v1 message without tokens.
//
// Data (a JSON object) becomes message.data as its compact JSON text, the
// form HMS apps read with RemoteMessage.getData. Title/Body make an
// android notification (click opens the app); without them, or for a
// background push, the message is data-only. Category has no HMS
// counterpart (android.category is Huawei's message classification) and
// Subtitle none either; both stay out.
func buildMessage(n *providers.Notification, app App, now time.Time) (*wireMessage, error) {
	if n == nil {
		return nil, fmt.Errorf("%w: no notification", ErrInvalidMessage)
	}
	switch n.PushType {
	case "", providers.PushAlert, providers.PushBackground:
	case providers.PushVoIP:
		return nil, fmt.Errorf("%w: push type %q is APNs-only", ErrInvalidMessage, n.PushType)
	default:
		return nil, fmt.Errorf("%w: unknown push type %q", ErrInvalidMessage, n.PushType)
	}
	priority := n.Priority
	switch priority {
	case "":
		priority = providers.PriorityHigh
	case providers.PriorityHigh, providers.PriorityNormal:
	default:
		return nil, fmt.Errorf("%w: unknown priority %q", ErrInvalidMessage, priority)
	}
	m := &wireMessage{Android: &wireAndroid{}}
	if d := bytes.TrimSpace(n.Data); len(d) > 0 && !bytes.Equal(d, []byte("null")) {
		if d[0] != '{' {
			return nil, fmt.Errorf("%w: data must be a JSON object", ErrInvalidMessage)
		}
		var buf bytes.Buffer
		if err := json.Compact(&buf, d); err != nil {
			return nil, fmt.Errorf("%w: data: %w", ErrInvalidMessage, err)
		}
		m.Data = buf.String()
	}
	background := n.PushType == providers.PushBackground
	if !background && (n.Title != "" || n.Body != "") {
		wn := &wireNotification{Title: n.Title, Body: n.Body, Group: n.ThreadID,
			ClickAction: clickAction{Type: 3}, DefaultSound: true}
		if n.Sound != "" && n.Sound != "default" {
			// HMS plays a sound file from the app's res/raw.
			wn.Sound, wn.DefaultSound = n.Sound, false
		}
		if n.Badge != nil && app.BadgeClass != "" {
			wn.Badge = &wireBadge{SetNum: min(max(*n.Badge, 0), 99), Class: app.BadgeClass}
		}
		m.Android.Notification = wn
	} else if m.Data == "" {
		if !background {
			return nil, fmt.Errorf("%w: neither title, body nor data to send", ErrInvalidMessage)
		}
		m.Data = "{}" // a wake-up needs some payload
	}
	if n.CollapseID != "" {
		// HMS collapses offline messages by a small integer group; any
		// other collapse id replaces the shown notification by tag.
		if k, err := strconv.Atoi(n.CollapseID); err == nil && k >= -1 && k <= 100 {
			m.Android.CollapseKey = &k
		} else if m.Android.Notification != nil {
			m.Android.Notification.Tag = n.CollapseID
		}
	}
	if m.Android.Notification == nil && priority == providers.PriorityHigh && app.HighUrgency {
		m.Android.Urgency = "HIGH"
	}
	if !n.ExpiresAt.IsZero() {
		ttl := n.ExpiresAt.Sub(now).Truncate(time.Second)
		if ttl <= 0 {
			return nil, fmt.Errorf("%w: expired at %s", ErrInvalidMessage, n.ExpiresAt.UTC().Format(time.RFC3339))
		}
		m.Android.TTL = strconv.FormatInt(int64(min(ttl, maxTTL)/time.Second), 10) + "s"
	}
	size, err := messageSize(m)
	if err != nil {
		return nil, err
	}
	if size > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrPayloadTooLarge, size, MaxMessageBytes)
	}
	return m, nil
}

// messageSize is the encoded size of m without tokens, as HMS counts it.
func messageSize(m *wireMessage) (int, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return 0, fmt.Errorf("%w: encode: %w", ErrInvalidMessage, err)
	}
	return len(b), nil
}

// CheckPayload reports whether n can be sent over HMS: nil, or an error
// wrapping ErrInvalidMessage or ErrPayloadTooLarge.
func CheckPayload(n *providers.Notification) error {
	_, err := buildMessage(n, App{}, time.Now())
	return err
}
