package relay

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
)

// DefaultMaxBody is a body cap that fits the largest batch a portal sends
// (push_message_per_hit 0 puts every queued push in one POST).
const DefaultMaxBody = 16 << 20

// ReplyContentType and ReplyBody are the answer to send at once, before
// processing: the portal ignores it, but its site checker passes only if
// the body contains "xml version=" (the vendor relay answers SQS-style).
const (
	ReplyContentType = "text/xml; charset=UTF-8"
	ReplyBody        = `<?xml version="1.0" encoding="UTF-8"?>` + "\n" +
		`<SendMessageResponse><SendMessageResult/></SendMessageResponse>` + "\n"
)

var (
	// ErrBodyTooLarge is returned by ReadForm when the body exceeds the cap.
	ErrBodyTooLarge = errors.New("relay: request body too large")
	// ErrMalformedForm is returned for a body that is not urlencoded.
	ErrMalformedForm = errors.New("relay: malformed form body")
	// ErrWrongAction is returned when Action is not "SendMessage".
	ErrWrongAction = errors.New("relay: Action is not SendMessage")
	// ErrNoMessageBody is returned when MessageBody is missing or empty.
	ErrNoMessageBody = errors.New("relay: MessageBody missing")
)

// Form is the relay request body.
type Form struct {
	Action      string
	MessageBody string
}

// ReadForm reads an application/x-www-form-urlencoded body of at most limit
// bytes (DefaultMaxBody when limit <= 0) and returns its Action and
// MessageBody. Other fields are ignored; of a repeated field the first
// counts. It reads one byte past limit to tell "exactly limit" from "more".
func ReadForm(r io.Reader, limit int64) (Form, error) {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	raw, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return Form{}, fmt.Errorf("relay: read body: %w", err)
	}
	if int64(len(raw)) > limit {
		return Form{}, fmt.Errorf("%w: more than %d bytes", ErrBodyTooLarge, limit)
	}
	var f Form
	var haveAction, haveBody bool
	rest := string(raw)
	for rest != "" && !(haveAction && haveBody) {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(pair, "=")
		key, err := url.QueryUnescape(k)
		if err != nil {
			return Form{}, fmt.Errorf("%w: field name: %w", ErrMalformedForm, err)
		}
		var dst *string
		switch {
		case key == "Action" && !haveAction:
			dst, haveAction = &f.Action, true
		case key == "MessageBody" && !haveBody:
			dst, haveBody = &f.MessageBody, true
		default:
			continue
		}
		if *dst, err = url.QueryUnescape(v); err != nil {
			return Form{}, fmt.Errorf("%w: %s: %w", ErrMalformedForm, key, err)
		}
	}
	if f.Action != "SendMessage" {
		return f, fmt.Errorf("%w: %q", ErrWrongAction, f.Action)
	}
	if f.MessageBody == "" {
		return f, ErrNoMessageBody
	}
	return f, nil
}

// LicenseKeyHash is the key a portal sends for a license key: md5 hex of
// it, with an empty or "demo" key sent as "DEMO" (23.100 and later).
func LicenseKeyHash(licenseKey string) string {
	k := strings.TrimSpace(licenseKey)
	if k == "" || strings.EqualFold(k, "demo") {
		k = "DEMO"
	}
	sum := md5.Sum([]byte(k))
	return hex.EncodeToString(sum[:])
}

// KeyAllowed reports whether key (the request's ?key=) is one of allowed
// (md5 hex strings, any case), comparing in constant time.
func KeyAllowed(key string, allowed []string) bool {
	k := []byte(strings.ToLower(key))
	ok := 0
	for _, a := range allowed {
		ok |= subtle.ConstantTimeCompare(k, []byte(strings.ToLower(a)))
	}
	return ok == 1 && len(k) > 0
}
