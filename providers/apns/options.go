package apns

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	"github.com/sideshow/apns2"
)

// Defaults applied by New to zero Options fields.
const (
	DefaultConcurrency = 256
	DefaultTimeout     = 10 * time.Second
)

// ErrInvalidOptions is wrapped by every error of Options.Validate.
var ErrInvalidOptions = errors.New("apns: invalid options")

// App is one iOS/macOS app pushpull sends to, with its credentials. Exactly
// one kind of auth is configured: token (Key or KeyFile, KeyID, TeamID) or
// certificate (CertFile).
type App struct {
	// ID is the app id as devices carry it (for example "Bitrix24").
	ID string
	// Topic is the app's bundle id, the apns-topic of alert and background
	// pushes.
	Topic string
	// VoIPTopic is the topic of VoIP pushes. Default Topic + ".voip".
	VoIPTopic string

	// KeyFile is the path of the .p8 signing key (token auth).
	KeyFile string
	// Key is the .p8 signing key itself (PEM), instead of KeyFile.
	Key []byte
	// KeyID is the 10-character id of the signing key (token auth).
	KeyID string
	// TeamID is the Apple developer team id (token auth).
	TeamID string

	// CertFile is the path of the push certificate with its private key,
	// .p12/.pfx (PKCS#12) or .pem (certificate auth).
	CertFile string
	// CertPassword decrypts CertFile; empty when it is not encrypted.
	CertPassword string
}

// Options configures a Provider. The zero value of each field means its
// documented default.
type Options struct {
	// Apps are the apps to send for; at least one.
	Apps []App
	// ProductionURL is the production host. Default apns2.HostProduction;
	// set it for a proxy or a fake.
	ProductionURL string
	// SandboxURL is the development host. Default apns2.HostDevelopment.
	SandboxURL string
	// Concurrency is the maximum number of pushes in flight per Send call.
	// Default 256 (APNs allows about 1000 streams per connection; more
	// connections open by themselves past the server's limit).
	Concurrency int
	// Timeout bounds each push, connection set-up included. Default 10s.
	Timeout time.Duration
	// RootCAs verifies the APNs servers; nil means the system pool. Tests
	// pass the fake's pool.
	RootCAs *x509.CertPool
	// Logger receives rejections, token renewals and credential warnings.
	// Default slog.Default().
	Logger *slog.Logger
	// Now is the clock for Retry-After dates and certificate expiry
	// warnings. Default time.Now.
	Now func() time.Time
}

// Validate checks o without touching files, and names the first bad field
// ("apps[1].topic: required").
func (o Options) Validate() error {
	if len(o.Apps) == 0 {
		return invalid("apps", "at least one app is required")
	}
	seen := make(map[string]int, len(o.Apps))
	for i, a := range o.Apps {
		field := func(name string) string { return fmt.Sprintf("apps[%d].%s", i, name) }
		if a.ID == "" {
			return invalid(field("id"), "required")
		}
		if j, dup := seen[a.ID]; dup {
			return invalid(field("id"), fmt.Sprintf("%q is also apps[%d].id", a.ID, j))
		}
		seen[a.ID] = i
		if a.Topic == "" {
			return invalid(field("topic"), "required")
		}
		token := a.KeyFile != "" || len(a.Key) > 0 || a.KeyID != "" || a.TeamID != ""
		cert := a.CertFile != "" || a.CertPassword != ""
		switch {
		case token && cert:
			return invalid(field("cert_file"), "token auth (key_file, key_id, team_id) and certificate auth are exclusive")
		case cert:
			if a.CertFile == "" {
				return invalid(field("cert_file"), "required with cert_password")
			}
		case token:
			if a.KeyFile != "" && len(a.Key) > 0 {
				return invalid(field("key"), "set key_file or key, not both")
			}
			if a.KeyFile == "" && len(a.Key) == 0 {
				return invalid(field("key_file"), "required for token auth")
			}
			if a.KeyID == "" {
				return invalid(field("key_id"), "required for token auth")
			}
			if a.TeamID == "" {
				return invalid(field("team_id"), "required for token auth")
			}
		default:
			return invalid(field("key_file"), "no credentials: set key_file, key_id and team_id, or cert_file")
		}
	}
	if err := checkURL("production_url", o.ProductionURL); err != nil {
		return err
	}
	if err := checkURL("sandbox_url", o.SandboxURL); err != nil {
		return err
	}
	if o.Concurrency < 0 {
		return invalid("concurrency", "must not be negative")
	}
	if o.Timeout < 0 {
		return invalid("timeout", "must not be negative")
	}
	return nil
}

func checkURL(field, s string) error {
	if s == "" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil {
		return invalid(field, err.Error())
	}
	// apns2 speaks HTTP/2 over TLS only.
	if u.Scheme != "https" || u.Host == "" {
		return invalid(field, fmt.Sprintf("%q is not an https:// URL", s))
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" {
		return invalid(field, fmt.Sprintf("%q must have no path or query", s))
	}
	return nil
}

func invalid(field, msg string) error {
	return fmt.Errorf("%w: %s: %s", ErrInvalidOptions, field, msg)
}

// withDefaults returns o with every zero field set to its default.
func (o Options) withDefaults() Options {
	if o.ProductionURL == "" {
		o.ProductionURL = apns2.HostProduction
	}
	if o.SandboxURL == "" {
		o.SandboxURL = apns2.HostDevelopment
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
