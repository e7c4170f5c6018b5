package fake

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"
)

// fcmStatusFor is the HTTP status real FCM answers with for an error code.
func fcmStatusFor(code string) int {
	switch code {
	case "":
		return http.StatusOK
	case FCMUnregistered:
		return http.StatusNotFound
	case FCMInvalidArgument:
		return http.StatusBadRequest
	case FCMQuotaExceeded:
		return http.StatusTooManyRequests
	case FCMUnavailable:
		return http.StatusServiceUnavailable
	case FCMSenderIDMismatch:
		return http.StatusForbidden
	case FCMThirdPartyAuthError:
		return http.StatusUnauthorized
	}
	return http.StatusInternalServerError
}

// fcmStatusName is the canonical google.rpc status for an HTTP status.
func fcmStatusName(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "INVALID_ARGUMENT"
	case http.StatusUnauthorized:
		return "UNAUTHENTICATED"
	case http.StatusForbidden:
		return "PERMISSION_DENIED"
	case http.StatusNotFound:
		return "NOT_FOUND"
	case http.StatusTooManyRequests:
		return "RESOURCE_EXHAUSTED"
	case http.StatusServiceUnavailable:
		return "UNAVAILABLE"
	case http.StatusInternalServerError:
		return "INTERNAL"
	}
	return "UNKNOWN"
}

func fcmDefaultMessage(code string, status int) string {
	switch code {
	case FCMUnregistered:
		return "Requested entity was not found."
	case FCMInvalidArgument:
		return "Request contains an invalid argument."
	case FCMQuotaExceeded:
		return "Quota exceeded for quota metric 'Send requests'."
	case FCMUnavailable:
		return "The service is currently unavailable."
	case FCMSenderIDMismatch:
		return "SenderId mismatch"
	case FCMThirdPartyAuthError:
		return "Auth error from APNS or Web Push Service"
	}
	return http.StatusText(status)
}

// fcmWriteError writes a Google API error body in the shape FCM v1 uses:
// {"error":{"code","message","status","details":[FcmError, BadRequest]}}.
func fcmWriteError(w http.ResponseWriter, status int, statusName, fcmCode, message, field string, retryAfter time.Duration) {
	type violation struct {
		Field       string `json:"field"`
		Description string `json:"description"`
	}
	type detail struct {
		Type            string      `json:"@type"`
		ErrorCode       string      `json:"errorCode,omitempty"`
		FieldViolations []violation `json:"fieldViolations,omitempty"`
	}
	var body struct {
		Error struct {
			Code    int      `json:"code"`
			Message string   `json:"message"`
			Status  string   `json:"status"`
			Details []detail `json:"details,omitempty"`
		} `json:"error"`
	}
	body.Error.Code = status
	body.Error.Message = message
	body.Error.Status = statusName
	if fcmCode != "" {
		body.Error.Details = append(body.Error.Details, detail{
			Type: "type.googleapis.com/google.firebase.fcm.v1.FcmError", ErrorCode: fcmCode,
		})
	}
	if field != "" && fcmCode == FCMInvalidArgument {
		desc := "Invalid value at '" + field + "'"
		if field == FCMTokenField {
			desc = "The registration token is not a valid FCM registration token"
		}
		body.Error.Details = append(body.Error.Details, detail{
			Type:            "type.googleapis.com/google.rpc.BadRequest",
			FieldViolations: []violation{{Field: field, Description: desc}},
		})
	}
	if retryAfter > 0 {
		secs := int64((retryAfter + time.Second - 1) / time.Second)
		w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	}
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(&body)
}
