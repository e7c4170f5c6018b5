package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/web/apierr"
)

// Limits bound what one request may ask for.
type Limits struct {
	// MaxBodyBytes is enforced by the listener's body-limit middleware;
	// it is here so handlers and the config endpoint can report it.
	MaxBodyBytes int64 // default 1 MiB
	// MaxItems is the most events/notifications in one request.
	MaxItems int // default 1000
	// MaxRecipients is the most users (or devices, or tags) in one item.
	MaxRecipients int // default 10000
}

// DefaultLimits are the documented defaults.
var DefaultLimits = Limits{MaxBodyBytes: 1 << 20, MaxItems: 1000, MaxRecipients: 10000}

// Validate names the first bad limit.
func (l Limits) Validate() error {
	switch {
	case l.MaxBodyBytes <= 0:
		return errors.New("max_body_bytes: must be positive")
	case l.MaxItems <= 0:
		return errors.New("max_items: must be positive")
	case l.MaxRecipients <= 0:
		return errors.New("max_recipients: must be positive")
	}
	return nil
}

// Decode reads the JSON request body into v. Unknown fields are rejected
// (a misspelt option must not be silently ignored), as are trailing data
// and a missing or non-JSON body. Errors name the field where they can.
func Decode(c echo.Context, v any) error {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if ct != "" && !strings.HasPrefix(strings.ToLower(ct), echo.MIMEApplicationJSON) {
		return apierr.Invalid("", "Content-Type must be application/json")
	}
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) {
			return err // body limit: mapped to payload_too_large
		}
		return apierr.Invalid("", "reading body: %v", err)
	}
	return DecodeBytes(body, v)
}

// DecodeBytes is Decode for a body already read.
func DecodeBytes(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		return apierr.Invalid("", "request body is empty: a JSON object is required")
	}
	// encoding/json would turn invalid bytes into U+FFFD, so "\xff" and
	// "\xfe" would name the same user or token: refuse them instead.
	if !utf8.Valid(body) {
		return apierr.Invalid("", "request body is not valid UTF-8")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return jsonError(err)
	}
	if dec.More() {
		return apierr.Invalid("", "unexpected data after the JSON object")
	}
	if _, err := dec.Token(); err != io.EOF {
		return apierr.Invalid("", "unexpected data after the JSON object")
	}
	return nil
}

func jsonError(err error) error {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return apierr.Invalid("", "malformed JSON at byte %d: %v", se.Offset, se)
	case errors.As(err, &te):
		field := te.Field
		return apierr.Invalid(field, "must be %s, not JSON %s", typeName(te.Type.Kind().String()), te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return apierr.Invalid("", "malformed JSON: unexpected end of input")
	}
	msg := err.Error()
	if f, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		return apierr.Invalid(strings.Trim(f, `"`), "unknown field")
	}
	var ae *apierr.Error
	if errors.As(err, &ae) {
		return ae
	}
	return apierr.Invalid("", "invalid JSON: %v", err)
}

func typeName(kind string) string {
	switch kind {
	case "slice", "array":
		return "an array"
	case "map", "struct":
		return "an object"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "bool":
		return "a boolean"
	case "string":
		return "a string"
	}
	return fmt.Sprintf("of type %s", kind)
}

// Item returns the field name of item i of a batch, e.g. "events[3]".
func Item(list string, i int) string { return fmt.Sprintf("%s[%d]", list, i) }
