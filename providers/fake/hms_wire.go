package fake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"time"
)

// HMS Push Kit result codes, as they appear in the "code" field of a
// messages:send answer (Huawei's "业务错误码" table).
const (
	HMSSuccess            = "80000000" // all tokens accepted
	HMSPartialSuccess     = "80100000" // some tokens illegal: msg lists them
	HMSParameterError     = "80100001" // a request parameter is wrong
	HMSBadMessage         = "80100003" // message structure is wrong
	HMSTTLExpired         = "80100004" // the ttl is already in the past
	HMSBadCollapseKey     = "80100013"
	HMSOAuthError         = "80200001" // bad or foreign access token
	HMSTokenExpired       = "80200003" // access token expired
	HMSNoPermission       = "80300002" // app may not push (service off, foreign token)
	HMSAllTokensInvalid   = "80300007" // every token is illegal
	HMSMessageTooLarge    = "80300008" // message (without tokens) > 4096 bytes
	HMSTooManyTokens      = "80300010"
	HMSNoHighUrgencyRight = "80300011" // HIGH urgency without the permission
	HMSOAuthServiceFailed = "80600003"
	HMSInternalError      = "81000001"
)

// HMS limits enforced by the fake (Huawei's documented limits).
const (
	HMSMaxMessageBytes = 4096
	HMSMaxTokens       = 1000
)

// hmsWireMessage is the part of a v1 message the fake checks.
type hmsWireMessage struct {
	Data         *string   `json:"data"`
	Notification *struct{} `json:"notification"`
	Android      *struct {
		TTL          *string `json:"ttl"`
		Urgency      string  `json:"urgency"`
		CollapseKey  *int    `json:"collapse_key"`
		Data         *string `json:"data"`
		Notification *struct {
			Title       string `json:"title"`
			Body        string `json:"body"`
			ClickAction *struct {
				Type int `json:"type"`
			} `json:"click_action"`
		} `json:"notification"`
	} `json:"android"`
	Token     []string `json:"token"`
	Topic     string   `json:"topic"`
	Condition string   `json:"condition"`
}

var hmsTTLPattern = regexp.MustCompile(`^\d+(\.\d{1,9})?[sS]?$`)

// hmsCheck validates a decoded message the way HMS does, returning the
// result code and message to refuse it with, or "".
func hmsCheck(m *hmsWireMessage, raw json.RawMessage, decodeErr error) (string, string) {
	if decodeErr != nil {
		return HMSBadMessage, "Invalid JSON: " + decodeErr.Error()
	}
	targets := 0
	for _, set := range []bool{len(m.Token) > 0, m.Topic != "", m.Condition != ""} {
		if set {
			targets++
		}
	}
	if targets != 1 {
		return HMSParameterError, "token, topic or condition: exactly one must be set"
	}
	if len(m.Token) > HMSMaxTokens {
		return HMSTooManyTokens, hmsDefaultMsg(HMSTooManyTokens)
	}
	tokBytes := 0
	for _, t := range m.Token {
		if t == "" {
			return HMSParameterError, "token must not be empty"
		}
		tokBytes += len(t) + 3 // quotes and comma
	}
	if len(raw)-tokBytes > HMSMaxMessageBytes {
		return HMSMessageTooLarge, hmsDefaultMsg(HMSMessageTooLarge)
	}
	if a := m.Android; a != nil {
		if a.TTL != nil && !hmsTTLPattern.MatchString(*a.TTL) {
			return HMSBadMessage, "android.ttl is invalid"
		}
		if a.Urgency != "" && a.Urgency != "HIGH" && a.Urgency != "NORMAL" {
			return HMSBadMessage, "android.urgency is invalid"
		}
		if a.CollapseKey != nil && (*a.CollapseKey < -1 || *a.CollapseKey > 100) {
			return HMSBadCollapseKey, hmsDefaultMsg(HMSBadCollapseKey)
		}
		if n := a.Notification; n != nil {
			if n.ClickAction == nil || n.ClickAction.Type < 1 || n.ClickAction.Type > 3 {
				return HMSBadMessage, "android.notification.click_action is required"
			}
			if n.Title == "" && n.Body == "" && m.Notification == nil {
				return HMSBadMessage, "notification title or body is required"
			}
		}
	}
	if m.Data == nil && m.Notification == nil && (m.Android == nil || (m.Android.Notification == nil && m.Android.Data == nil)) {
		return HMSBadMessage, "message has no payload"
	}
	return "", ""
}

// hmsStatusFor is the HTTP status HMS answers with for a result code.
func hmsStatusFor(code string) int {
	switch code {
	case HMSSuccess, HMSPartialSuccess:
		return http.StatusOK
	case HMSOAuthError, HMSTokenExpired:
		return http.StatusUnauthorized
	case HMSNoPermission, HMSNoHighUrgencyRight:
		return http.StatusForbidden
	case HMSInternalError, HMSOAuthServiceFailed:
		return http.StatusInternalServerError
	}
	return http.StatusBadRequest
}

func hmsDefaultMsg(code string) string {
	switch code {
	case HMSOAuthError:
		return "Oauth authentication error"
	case HMSTokenExpired:
		return "Access token expired"
	case HMSNoPermission:
		return "Push service is not enabled or the app has no permission"
	case HMSAllTokensInvalid:
		return "All the tokens are invalid"
	case HMSMessageTooLarge:
		return "The message body size exceeds the default value"
	case HMSTooManyTokens:
		return "The number of tokens in the message body exceeds the default value"
	case HMSNoHighUrgencyRight:
		return "You do not have permission to send high-priority messages"
	case HMSBadCollapseKey:
		return "The collapse_key message field is invalid"
	case HMSInternalError:
		return "System internal error"
	}
	return "Request parameter error"
}

// hmsWrite writes HMS's answer shape: {"code","msg","requestId"}; seq
// makes the request id unique.
func hmsWrite(w http.ResponseWriter, seq int64, status int, code, msg string, retryAfter time.Duration) {
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	id := fmt.Sprintf("%d%08d", time.Now().UnixMilli(), seq)
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]string{"code": code, "msg": msg, "requestId": id})
}
