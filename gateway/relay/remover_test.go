package relay

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/push"
)

func TestValidHost(t *testing.T) {
	t.Parallel()
	for h, want := range map[string]bool{
		"portal.tld": true, "portal.tld:8443": true, "127.0.0.1:80": true, "[::1]:443": true,
		"": false, "evil.tld/path": false, "user@evil.tld": false, "a.tld?x=1": false, "a.tld#f": false,
		"a.tld:99999": false, "a b.tld": false, "a.tld\r\nX: y": false, "%2e%2e": false, ":80": false,
	} {
		if got := validHost(h); got != want {
			t.Errorf("validHost(%q) = %v, want %v", h, got, want)
		}
	}
}

// TestRemoverRetriesAndFilters: a failing portal is retried; reports of
// jobs that did not come through the relay, and frames without a usable
// host, call nobody.
func TestRemoverRetriesAndFilters(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		r.ParseForm()
		if r.PostForm.Get("token") != "tok-1" {
			t.Errorf("token %q", r.PostForm.Get("token"))
		}
	}))
	defer portal.Close()
	rm, err := NewRemover(RemoverOptions{Scheme: "http", Backoff: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	rm.OnInvalidToken(push.Report{Token: "api-token", Origin: ""})
	rm.OnInvalidToken(push.Report{Token: "x", Origin: OriginPrefix + "evil.tld/steal"})
	rm.OnInvalidToken(push.Report{Token: "tok-1", Origin: OriginPrefix + strings.TrimPrefix(portal.URL, "http://")})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rm.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if s := rm.Stats(); s.Sent != 1 || s.Failed != 0 || s.Dropped != 1 || calls.Load() != 2 {
		t.Errorf("stats %+v, calls %d", s, calls.Load())
	}
	if err := rm.Close(ctx); err != nil {
		t.Errorf("second Close: %v", err)
	}
}
