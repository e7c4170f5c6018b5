package apns

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

// TestClassification drives every row of the PROVIDERS.md table through
// the real apns2 client and the fake.
func TestClassification(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	type row struct {
		status     int
		reason     string
		retryAfter time.Duration
		class      providers.Class
	}
	rows := []row{
		{410, fake.APNsUnregistered, 0, providers.TokenInvalid},
		{410, fake.APNsExpiredToken, 0, providers.TokenInvalid},
		{400, fake.APNsBadDeviceToken, 0, providers.TokenInvalid},
		{400, fake.APNsDeviceTokenNotForTopic, 0, providers.TokenInvalid},
		{429, fake.APNsTooManyRequests, 30 * time.Second, providers.Retry},
		{500, fake.APNsInternalServerError, 0, providers.Retry},
		{503, fake.APNsServiceUnavailable, 5 * time.Second, providers.Retry},
		{503, fake.APNsShutdown, 0, providers.Retry},
		{403, fake.APNsExpiredProviderToken, 0, providers.Retry},
		{400, fake.APNsIdleTimeout, 0, providers.Retry},
		{413, fake.APNsPayloadTooLarge, 0, providers.Rejected},
		{400, fake.APNsBadTopic, 0, providers.Rejected},
		{400, fake.APNsTopicDisallowed, 0, providers.Rejected},
		{400, fake.APNsMissingTopic, 0, providers.Rejected},
		{403, "BadCertificate", 0, providers.Rejected},
		{403, fake.APNsInvalidProviderToken, 0, providers.Rejected},
		{404, fake.APNsBadPath, 0, providers.Rejected},
		{405, fake.APNsMethodNotAllowed, 0, providers.Rejected},
	}
	n := &providers.Notification{Body: "x"}
	batch := make([]providers.Message, len(rows))
	for i, r := range rows {
		e.prod.Script(tok(i), fake.Behavior{Status: r.status, Reason: r.reason, RetryAfter: r.retryAfter})
		batch[i] = msg(tok(i), n)
	}
	for i, got := range e.p.Send(context.Background(), batch) {
		want := rows[i]
		if got.Class != want.class || got.Status != want.status || got.Reason != want.reason || got.RetryAfter != want.retryAfter {
			t.Errorf("%d %s: got %v %d %q retry-after %v, want %v (retry-after %v)",
				want.status, want.reason, got.Class, got.Status, got.Reason, got.RetryAfter, want.class, want.retryAfter)
		}
		var re *ResponseError
		if !errors.As(got.Err, &re) || re.Status != want.status || re.Reason != want.reason {
			t.Errorf("%s: Err = %v, want *ResponseError", want.reason, got.Err)
		}
		if want.status == 410 && re != nil && re.Timestamp.IsZero() {
			t.Errorf("%s: 410 without timestamp", want.reason)
		}
	}
}

func TestUnreadableAnswerIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	// A proxy's HTML page: not a verdict on the token, whatever the status.
	e.prod.Script(tok(0), fake.Behavior{Status: 400, RawBody: "<html>Bad Request</html>", RetryAfter: 7 * time.Second})
	r := e.send1(t, msg(tok(0), &providers.Notification{Body: "x"}))
	if r.Class != providers.Retry || r.Status != 400 || !errors.Is(r.Err, ErrBadResponse) || r.RetryAfter != 7*time.Second {
		t.Fatalf("%+v", r)
	}
}

func TestNetworkErrorAndRecovery(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, nil)
	n := &providers.Notification{Body: "x"}
	e.prod.Down()
	if r := e.send1(t, msg(tok(0), n)); r.Class != providers.Retry || r.Status != 0 || r.Reason != "network error" {
		t.Fatalf("while down: %+v", r)
	}
	if err := e.prod.Up(); err != nil {
		t.Fatal(err)
	}
	if r := e.send1(t, msg(tok(0), n)); r.Class != providers.Delivered {
		t.Fatalf("after Up: %+v", r)
	}
}

func TestTimeoutIsRetried(t *testing.T) {
	t.Parallel()
	e := newEnv(t, fake.APNsOptions{}, func(o *Options) { o.Timeout = 100 * time.Millisecond })
	e.prod.Script(tok(0), fake.Behavior{Delay: time.Hour})
	r := e.send1(t, msg(tok(0), &providers.Notification{Body: "x"}))
	if r.Class != providers.Retry || r.Reason != "timeout" || !errors.Is(r.Err, context.DeadlineExceeded) {
		t.Fatalf("%+v", r)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":     0,
		"120":  2 * time.Minute,
		" 3 ":  3 * time.Second,
		"-4":   0,
		"soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
		now.Add(-time.Minute).Format(http.TimeFormat):     0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}
