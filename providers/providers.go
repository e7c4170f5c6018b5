// Package providers defines the seam between the dispatcher and the mobile
// push services: one unified Notification, one Provider interface, and the
// classified Result every provider returns for every target.
//
// Subpackages adapt real services (apns on github.com/sideshow/apns2, fcm on
// firebase.google.com/go/v4) and provide protocol-true fakes (fake) for tests,
// benchmarks and the demo. This package imports nothing from the project.
package providers

import (
	"context"
	"encoding/json"
	"time"
)

// Platform names as stored on devices and jobs.
const (
	PlatformAPNs = "apns"
	PlatformFCM  = "fcm"
	PlatformHMS  = "hms"
)

// Push types.
const (
	PushAlert      = "alert"
	PushBackground = "background"
	PushVoIP       = "voip"
)

// Priorities.
const (
	PriorityHigh   = "high"
	PriorityNormal = "normal"
)

// Notification is the provider-neutral content of one push. It is what the
// queue stores (as JSON) for each job, so field names are part of the on-disk
// format: add fields, never rename them.
type Notification struct {
	Title            string          `json:"title,omitempty"`
	Subtitle         string          `json:"subtitle,omitempty"`
	Body             string          `json:"body,omitempty"`
	Badge            *int            `json:"badge,omitempty"`
	Sound            string          `json:"sound,omitempty"`
	Category         string          `json:"category,omitempty"`
	ThreadID         string          `json:"thread_id,omitempty"`
	Data             json.RawMessage `json:"data,omitempty"` // a JSON object: custom payload (Bitrix PARAMS)
	ContentAvailable bool            `json:"content_available,omitempty"`
	MutableContent   bool            `json:"mutable_content,omitempty"`
	PushType         string          `json:"push_type,omitempty"` // alert (default) | background | voip
	Priority         string          `json:"priority,omitempty"`  // high (default) | normal
	CollapseID       string          `json:"collapse_id,omitempty"`
	// ExpiresAt is when the push becomes useless; zero means "provider default".
	ExpiresAt time.Time `json:"expires_at,omitempty"`
	// APNs holds raw overrides merged last into the APNs request: keys of the
	// payload (including "aps") and, under "headers", apns-* header values.
	APNs json.RawMessage `json:"apns,omitempty"`
	// FCM holds raw overrides merged last into the FCM v1 message object.
	FCM json.RawMessage `json:"fcm,omitempty"`
}

// Target is one device to deliver to.
type Target struct {
	// ID identifies the target in results and logs (the queue job id).
	ID       string `json:"id"`
	Platform string `json:"platform"`
	AppID    string `json:"app_id"`
	// Token is the provider token to send to (for VoIP pushes the device's
	// VoIP token, chosen by the caller).
	Token   string `json:"token"`
	Sandbox bool   `json:"sandbox,omitempty"`
}

// Message is one target with its notification. Several messages of a batch
// may share one *Notification.
type Message struct {
	Target       Target
	Notification *Notification
}

// Class is what a provider's answer means for the job and the token.
type Class int

const (
	// Delivered: the service accepted the push.
	Delivered Class = iota + 1
	// Retry: a transient failure; send again later (after RetryAfter if set).
	Retry
	// TokenInvalid: the token is dead or belongs elsewhere; remove the device
	// and drop the job.
	TokenInvalid
	// Rejected: our request or configuration is wrong; dead-letter the job
	// with the reason and keep the token.
	Rejected
)

func (c Class) String() string {
	switch c {
	case Delivered:
		return "delivered"
	case Retry:
		return "retry"
	case TokenInvalid:
		return "token_invalid"
	case Rejected:
		return "rejected"
	}
	return "unknown"
}

// Result is the classified outcome for one Message.
type Result struct {
	Class Class
	// RetryAfter is the delay the service asked for (Retry-After), or 0.
	RetryAfter time.Duration
	// Reason is the service's own reason ("Unregistered", "UNREGISTERED",
	// "BadTopic", "timeout", ...), for logs, status and dead letters.
	Reason string
	// Status is the HTTP status the service answered, 0 on transport errors.
	Status int
	// ProviderID is the service's id for an accepted push (apns-id, FCM
	// message name), when it gives one.
	ProviderID string
	// Err is the underlying error for anything but Delivered, if any.
	Err error
}

// Provider sends pushes to one platform. Implementations are safe for
// concurrent use and reuse their connections across calls.
type Provider interface {
	// Platform returns the platform this provider serves (PlatformAPNs, ...).
	Platform() string
	// HasApp reports whether the provider is configured for appID.
	HasApp(appID string) bool
	// Send delivers a batch, in parallel up to the provider's configured
	// concurrency, and returns one Result per message in input order. It
	// never returns early on a per-message failure; a cancelled ctx yields
	// Retry results for what was not sent.
	Send(ctx context.Context, batch []Message) []Result
	// Close releases connections. It is idempotent.
	Close() error
}
