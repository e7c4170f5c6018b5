package apns

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/sideshow/apns2"

	"github.com/pushpull/pushpull/providers"
)

// Errors a Result may carry besides *ResponseError and transport errors.
var (
	// ErrUnknownApp: the target's app id has no APNs app configured.
	ErrUnknownApp = errors.New("apns: no app configured")
	// ErrBadDeviceToken: the token is empty or not hex, so APNs would
	// refuse it; it is judged locally without a round trip.
	ErrBadDeviceToken = errors.New("apns: malformed device token")
	// ErrClosed: Send was called after Close.
	ErrClosed = errors.New("apns: provider closed")
	// ErrBadResponse: APNs (or a proxy) answered with a body that is not
	// APNs JSON; the push is retried.
	ErrBadResponse = errors.New("apns: unreadable response")
)

// ResponseError is an APNs answer other than 200.
type ResponseError struct {
	Status int
	Reason string
	// Timestamp is when APNs last knew the token was valid (410 only).
	Timestamp time.Time
}

// Error reports the status and APNs reason.
func (e *ResponseError) Error() string {
	return fmt.Sprintf("apns: %d %s", e.Status, e.Reason)
}

// respMeta carries what apns2.Response drops (the Retry-After header, and
// the status when the body is unreadable) from the transport back to Send.
type respMeta struct {
	status     int
	retryAfter string
}

type metaKey struct{}

// metaTransport records response metadata into the respMeta found in the
// request context.
type metaTransport struct{ next http.RoundTripper }

// RoundTrip implements http.RoundTripper.
func (t metaTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if resp != nil {
		if m, ok := req.Context().Value(metaKey{}).(*respMeta); ok {
			m.status = resp.StatusCode
			if v := resp.Header["Retry-After"]; len(v) > 0 {
				m.retryAfter = v[0]
			}
		}
	}
	return resp, err
}

// classifyAnswer maps an APNs answer to a Result (PROVIDERS.md table).
func classifyAnswer(res *apns2.Response, meta *respMeta, now time.Time) providers.Result {
	if res.StatusCode == http.StatusOK {
		return providers.Result{Class: providers.Delivered, Status: http.StatusOK, ProviderID: res.ApnsID}
	}
	r := providers.Result{
		Status: res.StatusCode,
		Reason: res.Reason,
		Err:    &ResponseError{Status: res.StatusCode, Reason: res.Reason, Timestamp: res.Timestamp.Time},
	}
	if r.Reason == "" {
		r.Reason = http.StatusText(res.StatusCode)
	}
	r.Class = classOf(res.StatusCode, res.Reason)
	if r.Class == providers.Retry {
		r.RetryAfter = parseRetryAfter(meta.retryAfter, now)
	}
	return r
}

func classOf(status int, reason string) providers.Class {
	switch {
	case status == http.StatusGone:
		return providers.TokenInvalid
	case reason == apns2.ReasonBadDeviceToken, reason == apns2.ReasonDeviceTokenNotForTopic:
		return providers.TokenInvalid
	case reason == apns2.ReasonIdleTimeout, reason == apns2.ReasonExpiredProviderToken:
		return providers.Retry
	case status == http.StatusTooManyRequests, status >= 500:
		return providers.Retry
	}
	return providers.Rejected
}

// classifyError maps a failed round trip: network errors, timeouts and
// unreadable bodies are all transient.
func classifyError(err error, meta *respMeta, parent context.Context, now time.Time) providers.Result {
	r := providers.Result{Class: providers.Retry, Status: meta.status}
	switch {
	case parent.Err() != nil:
		r.Reason = "canceled"
		r.Err = fmt.Errorf("apns: push: %w", err)
	case errors.Is(err, context.DeadlineExceeded):
		r.Reason = "timeout"
		r.Err = fmt.Errorf("apns: push: %w", err)
	case meta.status != 0:
		// A response arrived but apns2 could not decode its body: a
		// proxy page, a truncated answer. Never a verdict on the token.
		r.Reason = "bad response"
		r.Err = fmt.Errorf("%w: status %d: %w", ErrBadResponse, meta.status, err)
		r.RetryAfter = parseRetryAfter(meta.retryAfter, now)
	default:
		r.Reason = "network error"
		r.Err = fmt.Errorf("apns: push: %w", err)
	}
	return r
}

// parseRetryAfter reads delay-seconds or an HTTP date; 0 when absent or
// unreadable.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// redact keeps the first 8 characters of a secret or token for logs.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
