// Package apierr is the one error shape of both pushpull listeners:
//
//	{"error": {"code": "invalid_argument", "message": "...", "field": "events[3].users"}}
//
// Handlers return *Error values (or domain errors, mapped by From), and the
// Echo error handler installed by Handler writes every failure — including
// Echo's own 404, 405 and body-limit errors — in that shape.
package apierr

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// Codes of the API, each with its HTTP status.
const (
	CodeInvalidArgument  = "invalid_argument"   // 400
	CodeUnauthenticated  = "unauthenticated"    // 401
	CodePermissionDenied = "permission_denied"  // 403
	CodeNotFound         = "not_found"          // 404
	CodeMethodNotAllowed = "method_not_allowed" // 405
	CodeConflict         = "conflict"           // 409
	CodePayloadTooLarge  = "payload_too_large"  // 413
	CodeRateLimited      = "rate_limited"       // 429
	CodeInternal         = "internal"           // 500
	CodeUnavailable      = "unavailable"        // 503
)

var statusOf = map[string]int{
	CodeInvalidArgument:  http.StatusBadRequest,
	CodeUnauthenticated:  http.StatusUnauthorized,
	CodePermissionDenied: http.StatusForbidden,
	CodeNotFound:         http.StatusNotFound,
	CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	CodeConflict:         http.StatusConflict,
	CodePayloadTooLarge:  http.StatusRequestEntityTooLarge,
	CodeRateLimited:      http.StatusTooManyRequests,
	CodeInternal:         http.StatusInternalServerError,
	CodeUnavailable:      http.StatusServiceUnavailable,
}

// Error is an API error. It implements error.
type Error struct {
	Code    string
	Message string
	// Field names the offending input, e.g. "notifications[2].token".
	Field string
	// RetryAfter, when set, is sent as the Retry-After header (429, 503).
	RetryAfter time.Duration
	// Err is the cause, logged but never sent to the caller.
	Err error
}

func (e *Error) Error() string {
	if e.Field != "" {
		return e.Code + ": " + e.Field + ": " + e.Message
	}
	return e.Code + ": " + e.Message
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Status is the HTTP status of e's code.
func (e *Error) Status() int {
	if s, ok := statusOf[e.Code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// New returns an error with code and a formatted message.
func New(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Invalid returns an invalid_argument error naming field.
func Invalid(field, format string, args ...any) *Error {
	return &Error{Code: CodeInvalidArgument, Field: field, Message: fmt.Sprintf(format, args...)}
}

// TooLarge returns a payload_too_large error naming field.
func TooLarge(field, format string, args ...any) *Error {
	return &Error{Code: CodePayloadTooLarge, Field: field, Message: fmt.Sprintf(format, args...)}
}

// WithField returns a copy of e whose field is prefix + "." + e.Field (or
// prefix alone), for errors raised deep inside a batch item.
func (e *Error) WithField(prefix string) *Error {
	c := *e
	switch {
	case c.Field == "":
		c.Field = prefix
	case prefix != "":
		c.Field = prefix + "." + c.Field
	}
	return &c
}

// Mapper turns a domain error into an API error, or returns nil when it
// does not recognise err. From consults the mappers in order.
type Mapper func(err error) *Error

// From maps any error to an API error: *Error passes through, Echo's
// HTTPError becomes the matching code, mappers are consulted, and the rest
// becomes an internal error whose cause is kept for the log only.
func From(err error, mappers ...Mapper) *Error {
	var ae *Error
	if errors.As(err, &ae) {
		return ae
	}
	var he *echo.HTTPError
	if errors.As(err, &he) {
		return fromHTTP(he)
	}
	for _, m := range mappers {
		if ae := m(err); ae != nil {
			if ae.Err == nil {
				ae.Err = err
			}
			return ae
		}
	}
	return &Error{Code: CodeInternal, Message: "internal error", Err: err}
}

func fromHTTP(he *echo.HTTPError) *Error {
	msg := http.StatusText(he.Code)
	if s, ok := he.Message.(string); ok && s != "" {
		msg = s
	}
	code := CodeInternal
	switch he.Code {
	case http.StatusBadRequest:
		code = CodeInvalidArgument
	case http.StatusUnauthorized:
		code = CodeUnauthenticated
	case http.StatusForbidden:
		code = CodePermissionDenied
	case http.StatusNotFound:
		code, msg = CodeNotFound, "no such endpoint"
	case http.StatusMethodNotAllowed:
		code = CodeMethodNotAllowed
	case http.StatusConflict:
		code = CodeConflict
	case http.StatusRequestEntityTooLarge:
		code, msg = CodePayloadTooLarge, "request body too large"
	case http.StatusTooManyRequests:
		code = CodeRateLimited
	case http.StatusServiceUnavailable:
		code = CodeUnavailable
	}
	return &Error{Code: code, Message: msg, Err: he.Internal}
}

type body struct {
	Error bodyError `json:"error"`
}

type bodyError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Field   string `json:"field,omitempty"`
}

// Write sends e as the response.
func Write(c echo.Context, e *Error) error {
	if e.RetryAfter > 0 {
		secs := int((e.RetryAfter + time.Second - 1) / time.Second)
		c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
	}
	if c.Request().Method == http.MethodHead {
		return c.NoContent(e.Status())
	}
	return c.JSON(e.Status(), body{Error: bodyError{Code: e.Code, Message: e.Message, Field: e.Field}})
}

// Handler returns an Echo HTTPErrorHandler that writes every error in the
// API shape and logs internal errors with their cause.
func Handler(log *slog.Logger, mappers ...Mapper) echo.HTTPErrorHandler {
	return func(err error, c echo.Context) {
		if c.Response().Committed {
			return
		}
		e := From(err, mappers...)
		if e.Code == CodeInternal {
			log.Error("request failed", "method", c.Request().Method, "path", c.Path(),
				"request_id", c.Response().Header().Get(echo.HeaderXRequestID), "err", err)
		}
		if werr := Write(c, e); werr != nil {
			log.Debug("writing error response", "err", werr)
		}
	}
}
