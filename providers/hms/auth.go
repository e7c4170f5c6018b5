package hms

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
)

var (
	// ErrCredentials is wrapped when Huawei's OAuth server refuses the
	// app's client id or secret: a configuration error, not transient.
	ErrCredentials = errors.New("hms: OAuth credentials refused")
	// ErrAuthUnavailable is wrapped when no access token could be fetched
	// for a transient reason (network, 5xx, malformed answer).
	ErrAuthUnavailable = errors.New("hms: OAuth token endpoint unavailable")
)

// tokenSource holds one app's access token. Concurrent callers share one
// fetch: sem admits one fetcher, the others wait for it (or their ctx).
type tokenSource struct {
	clientID string
	secret   string
	url      string
	hc       *http.Client
	timeout  time.Duration
	now      func() time.Time
	sem      chan struct{}

	mu      sync.Mutex
	tok     string
	expires time.Time
}

func newTokenSource(clientID, secret, tokenURL string, hc *http.Client, timeout time.Duration, now func() time.Time) *tokenSource {
	return &tokenSource{clientID: clientID, secret: secret, url: tokenURL, hc: hc,
		timeout: timeout, now: now, sem: make(chan struct{}, 1)}
}

func (s *tokenSource) cached() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok != "" && s.now().Before(s.expires) {
		return s.tok
	}
	return ""
}

// token returns a valid access token, fetching one if needed.
func (s *tokenSource) token(ctx context.Context) (string, error) {
	if t := s.cached(); t != "" {
		return t, nil
	}
	select {
	case s.sem <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-s.sem }()
	if t := s.cached(); t != "" {
		return t, nil // fetched by the caller we waited for
	}
	tok, ttl, err := s.fetch(ctx)
	if err != nil {
		return "", err
	}
	s.mu.Lock()
	s.tok = tok
	// Replace it a margin before expiry, but never hold a short-lived
	// token for less than half its life.
	s.expires = s.now().Add(max(ttl-tokenMargin, ttl/2))
	s.mu.Unlock()
	return tok, nil
}

// invalidate drops tok if it is still the cached one, so that the next
// token call fetches a fresh one (and a stale caller cannot drop a token
// that another caller already replaced).
func (s *tokenSource) invalidate(tok string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tok == tok {
		s.tok = ""
	}
}

func (s *tokenSource) fetch(ctx context.Context) (string, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	form := url.Values{
		"grant_type":    {"client_credentials"},
		"client_id":     {s.clientID},
		"client_secret": {s.secret},
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrAuthUnavailable, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := s.hc.Do(req)
	if err != nil {
		return "", 0, fmt.Errorf("%w: %w", ErrAuthUnavailable, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", 0, fmt.Errorf("%w: read answer: %w", ErrAuthUnavailable, err)
	}
	var ans struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
		Error       int    `json:"error"`
		SubError    int    `json:"sub_error"`
		Description string `json:"error_description"`
	}
	jerr := json.Unmarshal(body, &ans)
	switch {
	case resp.StatusCode >= 500 || resp.StatusCode == http.StatusTooManyRequests:
		return "", 0, fmt.Errorf("%w: HTTP %d", ErrAuthUnavailable, resp.StatusCode)
	case resp.StatusCode >= 400 || (jerr == nil && ans.Error != 0):
		// Huawei answers a bad client id or secret with a 4xx and
		// {"error":1101,"sub_error":…,"error_description":…}.
		return "", 0, fmt.Errorf("%w: HTTP %d, error %d/%d: %s", ErrCredentials,
			resp.StatusCode, ans.Error, ans.SubError, ans.Description)
	case jerr != nil || ans.AccessToken == "":
		return "", 0, fmt.Errorf("%w: malformed token answer (HTTP %d)", ErrAuthUnavailable, resp.StatusCode)
	}
	ttl := time.Duration(ans.ExpiresIn) * time.Second
	if ttl <= 0 {
		ttl = time.Hour // Huawei's documented lifetime
	}
	return ans.AccessToken, ttl, nil
}
