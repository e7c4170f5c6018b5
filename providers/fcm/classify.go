package fcm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"firebase.google.com/go/v4/errorutils"
	"firebase.google.com/go/v4/messaging"

	"github.com/pushpull/pushpull/providers"
)

// ErrUnknownApp is wrapped in the Result of a message whose app id has no
// FCM app configured.
var ErrUnknownApp = errors.New("fcm: unknown app")

// ErrClosed is wrapped in Retry results of sends attempted after Close.
var ErrClosed = errors.New("fcm: provider closed")

// Reasons for results that carry no FCM error code.
const (
	ReasonTimeout   = "timeout"
	ReasonCancelled = "cancelled"
	ReasonTransport = "transport"
	ReasonInvalid   = "invalid_message"
	ReasonNoApp     = "no_app"
	ReasonClosed    = "closed"
)

// reasonOf names the error: the FcmError code when FCM gave one, else the
// google.rpc status, else the HTTP status.
func reasonOf(err error, status int) string {
	switch {
	case messaging.IsUnregistered(err):
		return "UNREGISTERED"
	case messaging.IsSenderIDMismatch(err):
		return "SENDER_ID_MISMATCH"
	case messaging.IsInvalidArgument(err):
		return "INVALID_ARGUMENT"
	case messaging.IsQuotaExceeded(err):
		return "QUOTA_EXCEEDED"
	case messaging.IsUnavailable(err):
		return "UNAVAILABLE"
	case messaging.IsInternal(err):
		return "INTERNAL"
	case messaging.IsThirdPartyAuthError(err):
		return "THIRD_PARTY_AUTH_ERROR"
	case errorutils.IsInvalidArgument(err):
		return "INVALID_ARGUMENT"
	case errorutils.IsUnauthenticated(err):
		return "UNAUTHENTICATED"
	case errorutils.IsPermissionDenied(err):
		return "PERMISSION_DENIED"
	case errorutils.IsNotFound(err):
		return "NOT_FOUND"
	case errorutils.IsResourceExhausted(err):
		return "RESOURCE_EXHAUSTED"
	case errorutils.IsInternal(err):
		return "INTERNAL"
	case errorutils.IsUnavailable(err):
		return "UNAVAILABLE"
	case errorutils.IsFailedPrecondition(err):
		return "FAILED_PRECONDITION"
	}
	return "HTTP " + strconv.Itoa(status)
}

// classify turns the outcome of one SDK send into a Result, following the
// FCM table of PROVIDERS.md. parent is the caller's context, send the
// per-send one derived from it.
func classify(sdkErr error, name string, parent, send context.Context, now time.Time) providers.Result {
	if sdkErr == nil {
		return providers.Result{Class: providers.Delivered, Status: http.StatusOK, ProviderID: name}
	}
	err := fmt.Errorf("fcm send: %w", sdkErr)
	resp := errorutils.HTTPResponse(sdkErr)
	if resp == nil {
		// No answer from FCM: the context ran out (the SDK then returns a
		// bare context error, or a transport error that no longer wraps
		// it), the network or the OAuth refresh failed, or the SDK refused
		// the message before sending it.
		switch {
		case parent.Err() != nil:
			return providers.Result{Class: providers.Retry, Reason: ReasonCancelled, Err: err}
		case send.Err() != nil || errors.Is(sdkErr, context.DeadlineExceeded):
			return providers.Result{Class: providers.Retry, Reason: ReasonTimeout, Err: err}
		case errorutils.IsUnavailable(sdkErr), errorutils.IsUnknown(sdkErr), errorutils.IsDeadlineExceeded(sdkErr):
			// The SDK's transport-level errors: refused, reset, timed out.
			return providers.Result{Class: providers.Retry, Reason: ReasonTransport, Err: err}
		}
		return providers.Result{Class: providers.Rejected, Reason: ReasonInvalid,
			Err: fmt.Errorf("%w: %w", ErrInvalidMessage, err)}
	}

	r := providers.Result{
		Status:     resp.StatusCode,
		Reason:     reasonOf(sdkErr, resp.StatusCode),
		RetryAfter: retryAfter(resp.Header.Get("Retry-After"), now),
		Err:        err,
	}
	switch {
	case messaging.IsUnregistered(sdkErr), messaging.IsSenderIDMismatch(sdkErr):
		r.Class = providers.TokenInvalid
	case messaging.IsInvalidArgument(sdkErr), resp.StatusCode == http.StatusBadRequest:
		// One code covers a malformed message and a malformed token; FCM
		// tells them apart with a field violation on message.token.
		if tokenFieldViolation(resp) {
			r.Class = providers.TokenInvalid
		} else {
			r.Class = providers.Rejected
		}
	case messaging.IsQuotaExceeded(sdkErr), messaging.IsUnavailable(sdkErr), messaging.IsInternal(sdkErr),
		resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode >= 500:
		r.Class = providers.Retry
	default:
		// THIRD_PARTY_AUTH_ERROR, our own OAuth refused (401), permission
		// denied or unknown project (403/404 without UNREGISTERED): our
		// configuration is wrong, the token may be fine.
		r.Class = providers.Rejected
	}
	return r
}

// tokenFieldViolation reports whether the error body names message.token
// in a google.rpc.BadRequest field violation.
func tokenFieldViolation(resp *http.Response) bool {
	if resp.Body == nil {
		return false
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return false
	}
	var e struct {
		Error struct {
			Details []struct {
				Type            string `json:"@type"`
				FieldViolations []struct {
					Field string `json:"field"`
				} `json:"fieldViolations"`
			} `json:"details"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &e) != nil {
		return false
	}
	for _, d := range e.Error.Details {
		if d.Type != "type.googleapis.com/google.rpc.BadRequest" {
			continue
		}
		for _, v := range d.FieldViolations {
			if v.Field == "message.token" {
				return true
			}
		}
	}
	return false
}

// retryAfter parses a Retry-After header: delay seconds or an HTTP date.
func retryAfter(h string, now time.Time) time.Duration {
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseInt(h, 10, 64); err == nil {
		if secs <= 0 {
			return 0
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}
