package devices

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Platform names accepted in Device.Platform. A platform is added by one
// case in platformSpec; nothing else in the package lists platforms.
const (
	PlatformAPNs = "apns"
	PlatformFCM  = "fcm"
	PlatformHMS  = "hms" // Huawei Push Kit
)

// Limits on free-form device fields, in bytes. They are generous for what
// apps really send and small enough that a hostile client cannot bloat the
// registry.
const (
	MaxIDLen       = 128
	MaxUserLen     = 128
	MaxAppIDLen    = 128
	MaxLocaleLen   = 35 // longest practical BCP 47 tag
	MaxTimezoneLen = 64
	MaxNameLen     = 256
)

// Device is one app installation that can receive mobile pushes.
//
// ID is the app's own device id (a UUID, say) when it sends one: then a
// re-registration with a new token replaces the old token. Without one, the
// registry derives the id from platform and token (DeriveID), so the same
// token always maps to the same device. Created and Updated are set by the
// registry (UTC, nanosecond precision); values passed to Register are
// ignored.
type Device struct {
	ID        string    `json:"id"`
	User      string    `json:"user"`
	Platform  string    `json:"platform"`
	Token     string    `json:"token"`
	VoIPToken string    `json:"voip_token,omitempty"`
	AppID     string    `json:"app_id,omitempty"`
	Sandbox   bool      `json:"sandbox,omitempty"`
	Locale    string    `json:"locale,omitempty"`
	Timezone  string    `json:"timezone,omitempty"`
	Name      string    `json:"name,omitempty"`
	Created   time.Time `json:"created"`
	Updated   time.Time `json:"updated"`
}

// ValidationError reports one invalid field of a Device. Field is the
// field's JSON name, so the web layer can hand it to API clients as is.
type ValidationError struct {
	Field   string
	Message string
}

// Error returns "<field>: <message>".
func (e *ValidationError) Error() string { return e.Field + ": " + e.Message }

// platform describes what one push platform accepts.
type platform struct {
	// checkToken returns a message when tok is not a token of this platform.
	checkToken func(tok string) string
	// normalize maps equivalent spellings of a token to one, so that the
	// token index cannot hold the same device twice.
	normalize func(tok string) string
	// voip is true when the platform has a separate VoIP token.
	voip bool
}

// platformSpec is the platform table. It is a switch rather than a map so
// that the package holds no mutable state.
func platformSpec(name string) (platform, bool) {
	switch name {
	case PlatformAPNs:
		return platform{checkToken: checkAPNsToken, normalize: strings.ToLower, voip: true}, true
	case PlatformFCM:
		return platform{checkToken: checkFCMToken, normalize: identity}, true
	case PlatformHMS:
		// HMS tokens are opaque strings like FCM's; the same rules apply.
		return platform{checkToken: checkFCMToken, normalize: identity}, true
	}
	return platform{}, false
}

// Platforms lists the platform names Validate accepts.
func Platforms() []string { return []string{PlatformAPNs, PlatformFCM, PlatformHMS} }

func identity(s string) string { return s }

// checkAPNsToken accepts the hex form of an APNs device token: today 32
// bytes, and Apple reserves the right to make them longer (up to 100).
func checkAPNsToken(tok string) string {
	if len(tok) < 64 || len(tok) > 200 {
		return "must be 64 to 200 hex characters"
	}
	if len(tok)%2 != 0 {
		return "must be an even number of hex characters"
	}
	for i := 0; i < len(tok); i++ {
		c := tok[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return "must be hex"
		}
	}
	return ""
}

// checkFCMToken accepts any printable, space-free UTF-8 string up to 4096
// bytes: Google documents no format for registration tokens.
func checkFCMToken(tok string) string {
	if tok == "" {
		return "is required"
	}
	if len(tok) > 4096 {
		return "must be at most 4096 bytes"
	}
	if !utf8.ValidString(tok) {
		return "must be valid UTF-8"
	}
	for _, r := range tok {
		if unicode.IsSpace(r) || unicode.IsControl(r) {
			return "must not contain whitespace or control characters"
		}
	}
	return ""
}

// Validate checks a device as it would be registered. It returns a
// *ValidationError naming the first bad field. An empty ID is valid (the
// registry derives one). Tokens are checked as given; Register lower-cases
// APNs tokens first, so upper-case hex is accepted.
func Validate(d Device) error {
	spec, ok := platformSpec(d.Platform)
	if !ok {
		return &ValidationError{"platform", "must be one of " + strings.Join(Platforms(), ", ")}
	}
	if msg := checkText(d.User, MaxUserLen, true); msg != "" {
		return &ValidationError{"user", msg}
	}
	if msg := checkText(d.ID, MaxIDLen, false); msg != "" {
		return &ValidationError{"id", msg}
	}
	if msg := spec.checkToken(d.Token); msg != "" {
		return &ValidationError{"token", msg}
	}
	if d.VoIPToken != "" {
		if !spec.voip {
			return &ValidationError{"voip_token", "is not supported on platform " + d.Platform}
		}
		if msg := spec.checkToken(d.VoIPToken); msg != "" {
			return &ValidationError{"voip_token", msg}
		}
		if spec.normalize(d.VoIPToken) == spec.normalize(d.Token) {
			return &ValidationError{"voip_token", "must differ from token"}
		}
	}
	for _, f := range []struct {
		name, value string
		max         int
	}{
		{"app_id", d.AppID, MaxAppIDLen},
		{"locale", d.Locale, MaxLocaleLen},
		{"timezone", d.Timezone, MaxTimezoneLen},
		{"name", d.Name, MaxNameLen},
	} {
		if msg := checkText(f.value, f.max, false); msg != "" {
			return &ValidationError{f.name, msg}
		}
	}
	return nil
}

// checkText accepts UTF-8 text of at most max bytes without control
// characters. Keeping NUL out of ids and users matters beyond hygiene: the
// registry uses it as the separator in its index keys.
func checkText(s string, max int, required bool) string {
	if s == "" {
		if required {
			return "is required"
		}
		return ""
	}
	if len(s) > max {
		return "must be at most " + strconv.Itoa(max) + " bytes"
	}
	if !utf8.ValidString(s) {
		return "must be valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return "must not contain control characters"
		}
	}
	return ""
}

// Normalize returns d with its tokens in canonical form (APNs hex
// lower-cased). Register applies it before validating, so callers only need
// it to compare tokens themselves.
func Normalize(d Device) Device {
	if spec, ok := platformSpec(d.Platform); ok {
		d.Token = spec.normalize(d.Token)
		d.VoIPToken = spec.normalize(d.VoIPToken)
	}
	return d
}

// DeriveID returns the id the registry gives a device registered without
// one: the first 128 bits of SHA-256 over platform and the normalized
// token, in hex. It is stable across processes and versions.
func DeriveID(platformName, token string) string {
	if spec, ok := platformSpec(platformName); ok {
		token = spec.normalize(token)
	}
	h := sha256.New()
	h.Write([]byte(platformName))
	h.Write([]byte{0})
	h.Write([]byte(token))
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0])[:16])
}

// redact keeps the first 8 characters of a secret for logs.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
