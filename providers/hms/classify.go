package hms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// HMS result codes the provider acts on (Huawei's "业务错误码" table).
const (
	CodeSuccess          = "80000000"
	CodePartialSuccess   = "80100000" // msg lists illegal_tokens
	CodeTopicTaskLimit   = "80100017" // >100 topic tasks at once: transient
	CodeOAuthError       = "80200001"
	CodeTokenExpired     = "80200003"
	CodeAllTokensInvalid = "80300007"
	CodeInternalError    = "81000001"
)

var (
	// ErrUnknownApp is wrapped in the Result of a message whose app id has
	// no HMS app configured.
	ErrUnknownApp = errors.New("hms: unknown app")
	// ErrClosed is wrapped in Retry results of sends attempted after Close.
	ErrClosed = errors.New("hms: provider closed")
	// ErrRejected is wrapped when HMS refused the request (Rejected).
	ErrRejected = errors.New("hms: push rejected")
	// ErrTokenInvalid is wrapped in TokenInvalid results.
	ErrTokenInvalid = errors.New("hms: token invalid")
	// ErrUnavailable is wrapped in Retry results HMS caused (flow control,
	// 5xx, system error, unreadable answer).
	ErrUnavailable = errors.New("hms: service unavailable")
)

// Reasons for results that carry no HMS result code.
const (
	ReasonTimeout          = "timeout"
	ReasonCancelled        = "cancelled"
	ReasonTransport        = "transport"
	ReasonInvalid          = "invalid_message"
	ReasonTooLarge         = "payload_too_large"
	ReasonNoApp            = "no_app"
	ReasonClosed           = "closed"
	ReasonOAuthRefused     = "oauth_refused"
	ReasonOAuthUnavailable = "oauth_unavailable"
)

// answer is HMS's send answer: {"code","msg","requestId"}.
type answer struct {
	Code      string `json:"code"`
	Msg       string `json:"msg"`
	RequestID string `json:"requestId"`
}

// authExpired reports an answer that a fresh access token may fix.
func authExpired(status int, a answer) bool {
	return status == http.StatusUnauthorized || a.Code == CodeOAuthError || a.Code == CodeTokenExpired
}

// classifyAnswer splits one answer into a Result per token of the request.
// parsed is false when the body was not HMS's JSON.
func classifyAnswer(status int, hdr http.Header, a answer, parsed bool, tokens []string, now time.Time) []providers.Result {
	out := make([]providers.Result, len(tokens))
	all := func(r providers.Result) []providers.Result {
		for i := range out {
			out[i] = r
		}
		return out
	}
	reason := a.Code
	if !parsed || reason == "" {
		reason = "HTTP " + strconv.Itoa(status)
	}
	base := providers.Result{Status: status, Reason: reason, RetryAfter: retryAfter(hdr.Get("Retry-After"), now)}
	switch {
	case parsed && status == http.StatusOK && a.Code == CodeSuccess:
		return all(providers.Result{Class: providers.Delivered, Status: status, Reason: a.Code, ProviderID: a.RequestID})
	case parsed && status == http.StatusOK && a.Code == CodePartialSuccess:
		illegal := illegalTokens(a.Msg)
		for i, t := range tokens {
			if illegal[t] {
				out[i] = base
				out[i].Class = providers.TokenInvalid
				out[i].Err = fmt.Errorf("%w: %s %s", ErrTokenInvalid, a.Code, "listed in illegal_tokens")
			} else {
				out[i] = providers.Result{Class: providers.Delivered, Status: status, Reason: a.Code, ProviderID: a.RequestID}
			}
		}
		return out
	case parsed && a.Code == CodeAllTokensInvalid:
		base.Class = providers.TokenInvalid
		base.Err = fmt.Errorf("%w: %s %s", ErrTokenInvalid, a.Code, a.Msg)
	case status == http.StatusServiceUnavailable, status == http.StatusTooManyRequests, status >= 500,
		a.Code == CodeInternalError, a.Code == CodeTopicTaskLimit, !parsed && status == http.StatusOK:
		// 503 is HMS's flow control; 5xx and 81000001 are its own faults.
		base.Class = providers.Retry
		base.Err = fmt.Errorf("%w: HTTP %d %s %s", ErrUnavailable, status, a.Code, a.Msg)
	default:
		// Bad message (801000xx), no permission (80300002/11), too large
		// (80300008), credentials (802000xx after a fresh token), 404: the
		// request or configuration is wrong, the tokens may be fine.
		base.Class = providers.Rejected
		base.Err = fmt.Errorf("%w: HTTP %d %s %s", ErrRejected, status, a.Code, a.Msg)
	}
	return all(base)
}

// illegalTokens reads the illegal_tokens list that 80100000 puts, as a JSON
// string, in msg: {"success":3,"failure":1,"illegal_tokens":["…"]}.
func illegalTokens(msg string) map[string]bool {
	var m struct {
		IllegalTokens []string `json:"illegal_tokens"`
	}
	if json.Unmarshal([]byte(msg), &m) != nil {
		return nil
	}
	out := make(map[string]bool, len(m.IllegalTokens))
	for _, t := range m.IllegalTokens {
		out[t] = true
	}
	return out
}

// transportResult classifies a request that got no answer.
func transportResult(err error, parent, req context.Context) providers.Result {
	switch {
	case parent.Err() != nil:
		return providers.Result{Class: providers.Retry, Reason: ReasonCancelled, Err: err}
	case req.Err() != nil || errors.Is(err, context.DeadlineExceeded):
		return providers.Result{Class: providers.Retry, Reason: ReasonTimeout, Err: err}
	}
	return providers.Result{Class: providers.Retry, Reason: ReasonTransport, Err: err}
}

// authResult classifies a failure to get an access token.
func authResult(err error, parent context.Context) providers.Result {
	switch {
	case errors.Is(err, ErrCredentials):
		return providers.Result{Class: providers.Rejected, Reason: ReasonOAuthRefused, Err: err}
	case parent.Err() != nil:
		return providers.Result{Class: providers.Retry, Reason: ReasonCancelled, Err: err}
	}
	return providers.Result{Class: providers.Retry, Reason: ReasonOAuthUnavailable, Err: err}
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
