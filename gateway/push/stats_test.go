package push

import (
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

func statsOf(t *testing.T, s *Service, platform string) ProviderStats {
	t.Helper()
	for _, p := range s.ProviderStats() {
		if p.Platform == platform {
			return p
		}
	}
	t.Fatalf("no stats for %s", platform)
	return ProviderStats{}
}

func countOf(st ProviderStats, app, result, reason string) uint64 {
	for _, r := range st.Results {
		if r.AppID == app && r.Result == result && r.Reason == reason {
			return r.Count
		}
	}
	return 0
}

// TestProviderHealthAccounting: real provider answers through the fakes
// show up per app, result and reason, in the latency histogram and in the
// last success / failure, with the token redacted from the error.
func TestProviderHealthAccounting(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{fakeClock: true})
	e.register(devices.Device{User: "1", Platform: devices.PlatformAPNs, Token: apnsToken(1)})
	gone := e.register(devices.Device{User: "2", Platform: devices.PlatformAPNs, Token: apnsToken(2)})
	busy := e.register(devices.Device{User: "3", Platform: devices.PlatformAPNs, Token: apnsToken(3)})
	e.prod.Script(gone.Token, fake.Behavior{Status: 410, Reason: fake.APNsUnregistered})
	e.prod.Script(busy.Token, fake.Behavior{Status: 429, Reason: "TooManyRequests", Times: 1})

	before := statsOf(t, e.svc, "apns")
	if before.LastSuccess != nil || before.LastFailure != nil || before.Latency.Count != 0 || len(before.Results) != 0 {
		t.Fatalf("fresh stats not empty: %+v", before)
	}
	e.push(Request{Users: []string{"1", "2", "3"}, Notification: providers.Notification{Body: "x"}})
	if n := e.dispatch(); n != 3 {
		t.Fatalf("dispatched %d", n)
	}
	st := statsOf(t, e.svc, "apns")
	for _, c := range []struct {
		result, reason string
	}{{"delivered", ReasonNone}, {"token_invalid", "Unregistered"}, {"retry", "TooManyRequests"}} {
		if n := countOf(st, apnsApp, c.result, c.reason); n != 1 {
			t.Errorf("%s/%s = %d, want 1 (results %+v)", c.result, c.reason, n, st.Results)
		}
	}
	if st.Delivered != 1 || st.TokenInvalid != 1 || st.Retried != 1 {
		t.Errorf("class counters %+v", st)
	}
	if st.Latency.Count != 1 || len(st.Latency.Counts) != len(st.Latency.Bounds)+1 || st.Latency.Sum <= 0 {
		t.Errorf("latency %+v, want one observed Send", st.Latency)
	}
	if st.LastSuccess == nil || !st.LastSuccess.Equal(t0) || st.LastFailure == nil || !st.LastFailure.Equal(t0) {
		t.Errorf("last success %v, failure %v, want %v", st.LastSuccess, st.LastFailure, t0)
	}
	if !strings.Contains(st.LastError, "TooManyRequests") || strings.Contains(st.LastError, busy.Token) {
		t.Errorf("last error %q", st.LastError)
	}

	// A delivered retry moves LastSuccess, not LastFailure.
	e.clock.Advance(time.Hour)
	if n := e.dispatch(); n != 1 {
		t.Fatalf("retry dispatched %d", n)
	}
	st = statsOf(t, e.svc, "apns")
	if !st.LastSuccess.Equal(t0.Add(time.Hour)) || !st.LastFailure.Equal(t0) {
		t.Errorf("after retry: success %v failure %v", st.LastSuccess, st.LastFailure)
	}
	if n := countOf(st, apnsApp, "delivered", ReasonNone); n != 2 {
		t.Errorf("delivered = %d, want 2", n)
	}
	if st.Latency.Count != 2 {
		t.Errorf("latency count %d, want 2", st.Latency.Count)
	}
}

// TestResultKeysBounded: provider reasons that are not identifiers, or
// beyond the key bound, fold into "other".
func TestResultKeysBounded(t *testing.T) {
	t.Parallel()
	if got := reasonLabel(providers.Result{Class: providers.Rejected, Reason: "no APNs app configured for x"}); got != ReasonOther {
		t.Errorf("free text reason -> %q", got)
	}
	if got := reasonLabel(providers.Result{Class: providers.Retry, Status: 502}); got != "status_502" {
		t.Errorf("status only -> %q", got)
	}
	var h health
	for i := range maxResultKeys + 10 {
		h.tallyLocked(resultKey{"app", "retry", "r" + strings.Repeat("x", i%40) + string(rune('a'+i%26))}, 1)
	}
	if len(h.results) > maxResultKeys+1 {
		t.Errorf("%d keys, bound %d", len(h.results), maxResultKeys)
	}
	if h.results[resultKey{"app", "retry", ReasonOther}] == 0 {
		t.Error("no overflow into other")
	}
}

func TestHistogramBuckets(t *testing.T) {
	t.Parallel()
	h := newHistogram([]float64{0.01, 0.1})
	for _, d := range []time.Duration{5 * time.Millisecond, 10 * time.Millisecond, 50 * time.Millisecond, time.Second} {
		h.observe(d)
	}
	s := h.snapshot()
	if want := []uint64{2, 1, 1}; s.Count != 4 || s.Counts[0] != want[0] || s.Counts[1] != want[1] || s.Counts[2] != want[2] {
		t.Errorf("snapshot %+v", s)
	}
	if s.Sum < 1.06 || s.Sum > 1.07 {
		t.Errorf("sum %v", s.Sum)
	}
}

func TestRunning(t *testing.T) {
	t.Parallel()
	e := newEnv(t, envConfig{})
	if e.svc.Running() {
		t.Fatal("running before Start")
	}
	e.start()
	if !e.svc.Running() {
		t.Fatal("not running after Start")
	}
	if err := e.svc.Stop(waitCtx(t)); err != nil {
		t.Fatal(err)
	}
	if e.svc.Running() {
		t.Fatal("running after Stop")
	}
}
