package fcm

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// Defaults applied by New for zero Options fields.
const (
	// DefaultConcurrency is the number of sends in flight per Send call. It
	// matches the idle-connection pool kept per host, so that over HTTP/1.1
	// every worker keeps its connection alive between sends.
	DefaultConcurrency = 100
	// DefaultTimeout bounds one send, including the SDK's own retries of
	// network errors and 503 (which wait 0, 1, 2 and 4 s).
	DefaultTimeout = 10 * time.Second
)

// ErrInvalidOptions is wrapped by every error Options.Validate returns.
var ErrInvalidOptions = errors.New("fcm: invalid options")

// App is one Firebase project the gateway sends for, as identified by the
// app id that devices register with.
type App struct {
	// ID is the app id as devices carry it (providers.Target.AppID).
	ID string
	// CredentialsFile is a service-account JSON file. Exactly one of
	// CredentialsFile and CredentialsJSON is required, unless
	// Options.HTTPClient is set (then both may be empty: unauthenticated
	// test mode).
	CredentialsFile string
	// CredentialsJSON is the service-account JSON itself.
	CredentialsJSON []byte
	// ProjectID is the Firebase project. Default: the credentials'
	// project_id. Required when there are no credentials.
	ProjectID string
}

func (a App) hasCredentials() bool {
	return a.CredentialsFile != "" || len(a.CredentialsJSON) > 0
}

// Options configures a Provider.
type Options struct {
	// Apps lists the configured apps; at least one, ids unique.
	Apps []App
	// Endpoint is the FCM v1 base URL. Default: FCM's own
	// (https://fcm.googleapis.com/v1). Tests and proxies use
	// "<fake>/v1".
	Endpoint string
	// Concurrency is how many sends one Send call keeps in flight.
	// Default DefaultConcurrency.
	Concurrency int
	// Timeout bounds each send. Default DefaultTimeout.
	Timeout time.Duration
	// HTTPClient, when set, carries every request (its Transport is used
	// as the base under OAuth). With no credentials on an app, requests go
	// out unauthenticated: the test mode. When nil, the provider builds
	// its own transport and closes its idle connections on Close.
	HTTPClient *http.Client
	// Logger receives rejections and dead tokens (tokens redacted).
	// Default: discard.
	Logger *slog.Logger
	// Now is the clock for TTLs and Retry-After dates. Default time.Now.
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
		case a.CredentialsFile != "" && len(a.CredentialsJSON) > 0:
			return fmt.Errorf("%w: Apps[%d].CredentialsFile: set together with CredentialsJSON; choose one", ErrInvalidOptions, i)
		case !a.hasCredentials() && o.HTTPClient == nil:
			return fmt.Errorf("%w: Apps[%d].CredentialsFile: service-account credentials are required (or set HTTPClient for unauthenticated test mode)", ErrInvalidOptions, i)
		case !a.hasCredentials() && a.ProjectID == "":
			return fmt.Errorf("%w: Apps[%d].ProjectID: required without credentials", ErrInvalidOptions, i)
		}
		seen[a.ID] = true
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: Endpoint: %q is not an absolute http(s) URL", ErrInvalidOptions, o.Endpoint)
		}
	}
	if o.Concurrency < 0 {
		return fmt.Errorf("%w: Concurrency: %d is negative", ErrInvalidOptions, o.Concurrency)
	}
	if o.Timeout < 0 {
		return fmt.Errorf("%w: Timeout: %v is negative", ErrInvalidOptions, o.Timeout)
	}
	return nil
}

func (o Options) withDefaults() Options {
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Timeout == 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
