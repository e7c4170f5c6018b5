package hms

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Platform is the platform name HMS devices and jobs carry.
const Platform = "hms"

// Defaults applied by New for zero Options fields.
const (
	// DefaultEndpoint is Huawei's push API base URL.
	DefaultEndpoint = "https://push-api.cloud.huawei.com"
	// DefaultTokenURL is Huawei's OAuth 2.0 token endpoint.
	DefaultTokenURL = "https://oauth-login.cloud.huawei.com/oauth2/v3/token"
	// DefaultConcurrency is the number of requests in flight per Send.
	DefaultConcurrency = 50
	// DefaultTimeout bounds one request (token fetch or send).
	DefaultTimeout = 10 * time.Second
	// DefaultMaxTokensPerRequest is HMS's own limit on tokens per send.
	DefaultMaxTokensPerRequest = 1000
	// tokenMargin is how long before its stated expiry an access token is
	// replaced, so that a token never expires between check and use.
	tokenMargin = 5 * time.Minute
)

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("hms: invalid options")

// App is one Huawei app the gateway pushes for.
type App struct {
	// ID is the app id as devices carry it (providers.Target.AppID).
	ID string
	// HMSAppID is the id in the send URL (/v1/{HMSAppID}/messages:send):
	// the app's OAuth client id, or for older apps its App ID.
	// Default: ClientID.
	HMSAppID string
	// ClientID is the OAuth 2.0 client id (AppGallery Connect). Required.
	ClientID string
	// ClientSecret is the OAuth 2.0 client secret. Exactly one of
	// ClientSecret and ClientSecretFile is required.
	ClientSecret string
	// ClientSecretFile is a file holding the client secret (surrounding
	// white space is ignored).
	ClientSecretFile string
	// HighUrgency sends data messages of priority "high" with urgency
	// HIGH. It needs Huawei's special permission (else 80300011), so the
	// default is NORMAL for everything.
	HighUrgency bool
	// BadgeClass is the app's launcher activity class; with it, a
	// notification's Badge sets the icon badge (HMS needs the class).
	BadgeClass string
}

// Options configures a Provider.
type Options struct {
	// Apps lists the configured apps; at least one, ids unique.
	Apps []App
	// Endpoint is the push API base URL. Default DefaultEndpoint.
	Endpoint string
	// TokenURL is the OAuth token endpoint. Default DefaultTokenURL.
	TokenURL string
	// Concurrency is how many requests one Send keeps in flight.
	// Default DefaultConcurrency.
	Concurrency int
	// Timeout bounds each request. Default DefaultTimeout.
	Timeout time.Duration
	// MaxTokensPerRequest caps the tokens sent in one request (1..1000).
	// Default DefaultMaxTokensPerRequest; 1 sends one request per token.
	MaxTokensPerRequest int
	// HTTPClient carries every request. Default: a client of the
	// provider's own, whose idle connections Close releases.
	HTTPClient *http.Client
	// Logger receives rejections and dead tokens (tokens redacted).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock for token expiry, TTLs and Retry-After dates.
	// Default time.Now.
	Now func() time.Time
}

// Validate reports the first invalid field by name.
func (o Options) Validate() error {
	if len(o.Apps) == 0 {
		return fmt.Errorf("%w: Apps: at least one app is required", ErrInvalidOptions)
	}
	seen := make(map[string]bool, len(o.Apps))
	for i, a := range o.Apps {
		switch {
		case a.ID == "":
			return fmt.Errorf("%w: Apps[%d].ID: empty", ErrInvalidOptions, i)
		case seen[a.ID]:
			return fmt.Errorf("%w: Apps[%d].ID: duplicate app id %q", ErrInvalidOptions, i, a.ID)
		case a.ClientID == "":
			return fmt.Errorf("%w: Apps[%d].ClientID: empty", ErrInvalidOptions, i)
		case a.ClientSecret != "" && a.ClientSecretFile != "":
			return fmt.Errorf("%w: Apps[%d].ClientSecret: set together with ClientSecretFile; choose one", ErrInvalidOptions, i)
		case a.ClientSecret == "" && a.ClientSecretFile == "":
			return fmt.Errorf("%w: Apps[%d].ClientSecret: required (or ClientSecretFile)", ErrInvalidOptions, i)
		}
		seen[a.ID] = true
	}
	for _, f := range []struct{ name, v string }{{"Endpoint", o.Endpoint}, {"TokenURL", o.TokenURL}} {
		if f.v == "" {
			continue
		}
		u, err := url.Parse(f.v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: %s: %q is not an absolute http(s) URL", ErrInvalidOptions, f.name, f.v)
		}
	}
	switch {
	case o.Concurrency < 0:
		return fmt.Errorf("%w: Concurrency: %d is negative", ErrInvalidOptions, o.Concurrency)
	case o.Timeout < 0:
		return fmt.Errorf("%w: Timeout: %v is negative", ErrInvalidOptions, o.Timeout)
	case o.MaxTokensPerRequest < 0 || o.MaxTokensPerRequest > DefaultMaxTokensPerRequest:
		return fmt.Errorf("%w: MaxTokensPerRequest: %d is outside 0..%d", ErrInvalidOptions, o.MaxTokensPerRequest, DefaultMaxTokensPerRequest)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Endpoint == "" {
		o.Endpoint = DefaultEndpoint
	}
	if o.TokenURL == "" {
		o.TokenURL = DefaultTokenURL
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.MaxTokensPerRequest == 0 {
		o.MaxTokensPerRequest = DefaultMaxTokensPerRequest
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
