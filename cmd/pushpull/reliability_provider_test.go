package main

// Provider faults against the real binary: the fake APNs/FCM down, slow,
// answering 429 with Retry-After, failing every other request, resetting
// streams mid-answer, and rotating its TLS certificate. Throughout, the
// gateway must keep accepting pushes (202), back off without a hot loop
// (CPU of the child process and request counts are measured while the
// provider is down), and deliver everything once the provider recovers.

import (
	"context"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers/fake"
)

const relAPNsApp = "rel-apns"

// withAPNs starts a fake APNs, adds it to e's config and returns it with
// the environment the child needs to trust it.
func withAPNs(t *testing.T, e *relEnv) (*fake.APNs, []string) {
	t.Helper()
	f, err := fake.NewAPNs(fake.APNsOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	f.AddKey("RELKEY1234", "RELTEAM123", pub)
	keyFile := filepath.Join(e.dir, "apns.p8")
	caFile := filepath.Join(e.dir, "ca.pem")
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(caFile, ca, 0o600); err != nil {
		t.Fatal(err)
	}
	e.toml += fmt.Sprintf(`
[apns]
production_url = %q
sandbox_url = %q
timeout = "3s"

[[apns.app]]
id = %q
topic = "com.example.reliability"
key_file = %q
key_id = "RELKEY1234"
team_id = "RELTEAM123"
`, f.URL(), f.URL(), relAPNsApp, keyFile)
	if err := os.WriteFile(e.cfg, []byte(e.toml), 0o600); err != nil {
		t.Fatal(err)
	}
	// Go reads SSL_CERT_FILE for the system pool: the child trusts the
	// fake's CA exactly as it would trust Apple's.
	return f, []string{"SSL_CERT_FILE=" + caFile}
}

// cpuTicks is the user+system CPU time of pid in clock ticks (1/100 s).
func cpuTicks(t *testing.T, pid int) int64 {
	t.Helper()
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	// Fields after the parenthesised command name; utime and stime are
	// fields 14 and 15 of the whole line.
	f := strings.Fields(string(raw[strings.LastIndexByte(string(raw), ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// burst sends n push requests of one device each and requires 202 for
// every one; it returns the tokens and the slowest answer.
func burst(t *testing.T, api *relAPI, platform, app, prefix string, n int) ([]string, time.Duration) {
	t.Helper()
	var toks []string
	var slowest time.Duration
	for i := range n {
		tok := fmt.Sprintf("%s-%d:APA91b", prefix, i)
		if platform == "apns" {
			tok = fmt.Sprintf("%s%056x", strings.Repeat("a", 8), len(prefix)*100000+i)
		}
		start := time.Now()
		status, raw, err := api.do(context.Background(), http.MethodPost, "/api/v1/push", pushBodyTo(platform, app, []string{tok}, 3600, i))
		if d := time.Since(start); d > slowest {
			slowest = d
		}
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("push %d while the provider misbehaves: %d %s %v", i, status, raw, err)
		}
		toks = append(toks, tok)
	}
	return toks, slowest
}

// delivered returns the tokens a fake answered 200.
func deliveredFCM(f *fake.FCM) map[string]int {
	m := map[string]int{}
	for _, r := range f.Received() {
		if r.Status == http.StatusOK {
			m[r.Token]++
		}
	}
	return m
}

func deliveredAPNs(f *fake.APNs) map[string]int {
	m := map[string]int{}
	for _, r := range f.Received() {
		if r.Status == http.StatusOK {
			m[r.Token]++
		}
	}
	return m
}

func waitAll(t *testing.T, what string, toks []string, got func() map[string]int) {
	t.Helper()
	waitFor(t, 90*time.Second, what, func() bool {
		m := got()
		for _, tok := range toks {
			if m[tok] == 0 {
				return false
			}
		}
		return true
	})
}

// outage is how long a provider stays down: a minute in soak mode.
func outage() time.Duration {
	if soak() {
		return time.Minute
	}
	if testing.Short() {
		return 2 * time.Second
	}
	return 4 * time.Second
}

func TestReliabilityProviderDown(t *testing.T) {
	e := newRelEnv(t, "")
	apns, env := withAPNs(t, e)
	p := e.start(t, nil, env...)
	api := newRelAPI(p.api)

	// Warm up: one delivery proves the TLS and JWT set-up.
	warm, _ := burst(t, api, "apns", relAPNsApp, "warm", 1)
	waitAll(t, "warm-up delivery", warm, func() map[string]int { return deliveredAPNs(apns) })

	// APNs refuses connections, FCM answers 503: both down at once.
	apns.Down()
	if err := e.fcm.SetFaults(fake.Faults{Unavailable: true}); err != nil {
		t.Fatal(err)
	}
	down := outage()
	start, cpu0 := time.Now(), cpuTicks(t, p.cmd.Process.Pid)
	req0 := e.fcm.Requests()
	atoks, slowA := burst(t, api, "apns", relAPNsApp, "down", 20)
	ftoks, slowF := burst(t, api, "fcm", relFCMApp, "down-fcm", 20)
	waitFor(t, down+5*time.Second, "the outage", func() bool { return time.Since(start) >= down })
	wall := time.Since(start)
	cpu := float64(cpuTicks(t, p.cmd.Process.Pid)-cpu0) / 100 / wall.Seconds()
	reqs := e.fcm.Requests() - req0
	perJobPerSec := float64(reqs) / float64(len(ftoks)) / wall.Seconds()
	figure(t, "provider/down outage=%v cpu=%.1f%% fcm_requests=%d (%.2f per job per second) push_max_latency=%v",
		wall.Round(time.Millisecond), cpu*100, reqs, perJobPerSec, max(slowA, slowF).Round(time.Millisecond))
	// Bounds with a wide margin for the race-instrumented binary: a hot
	// loop would use a whole core and retry hundreds of times a second.
	if cpu > 0.25 {
		t.Errorf("CPU %.0f%% of a core while the providers are down: a hot loop?", cpu*100)
	}
	if perJobPerSec > 5 {
		t.Errorf("%.1f FCM attempts per job per second while it is down", perJobPerSec)
	}

	if err := apns.Up(); err != nil {
		t.Fatal(err)
	}
	if err := e.fcm.SetFaults(fake.Faults{}); err != nil {
		t.Fatal(err)
	}
	waitAll(t, "APNs deliveries after recovery", atoks, func() map[string]int { return deliveredAPNs(apns) })
	waitAll(t, "FCM deliveries after recovery", ftoks, func() map[string]int { return deliveredFCM(e.fcm) })
}

func TestReliabilityProviderSlow(t *testing.T) {
	e := newRelEnv(t, "")
	p := e.start(t, nil)
	api := newRelAPI(p.api)
	e.fcm.SetDefault(fake.FCMBehavior{Delay: 2 * time.Second})
	toks, slowest := burst(t, api, "fcm", relFCMApp, "slow", 30)
	start := time.Now()
	waitAll(t, "slow deliveries", toks, func() map[string]int { return deliveredFCM(e.fcm) })
	figure(t, "provider/slow answer=2s jobs=%d all_delivered_in=%v push_max_latency=%v", len(toks), time.Since(start).Round(time.Millisecond), slowest.Round(time.Millisecond))
	if slowest > time.Second {
		t.Errorf("the API waited %v for a slow provider", slowest)
	}
}

func TestReliabilityProvider429RetryAfter(t *testing.T) {
	e := newRelEnv(t, "")
	p := e.start(t, nil)
	api := newRelAPI(p.api)
	const retryAfter = 2 * time.Second
	e.fcm.SetDefault(fake.FCMBehavior{ErrorCode: fake.FCMQuotaExceeded, RetryAfter: retryAfter})
	toks, _ := burst(t, api, "fcm", relFCMApp, "quota", 10)
	// Let every job meet the 429 at least twice, then lift it.
	waitFor(t, time.Minute, "repeated 429s", func() bool { return e.fcm.Requests() >= int64(2*len(toks)) })
	e.fcm.SetDefault(fake.FCMBehavior{})
	waitAll(t, "deliveries after the quota", toks, func() map[string]int { return deliveredFCM(e.fcm) })
	// No attempt of a job came sooner than Retry-After after its 429.
	last := map[string]time.Time{}
	minGap := time.Hour
	for _, r := range e.fcm.Received() {
		if prev, ok := last[r.Token]; ok {
			minGap = min(minGap, r.At.Sub(prev))
		}
		if r.Status == http.StatusTooManyRequests {
			last[r.Token] = r.At
		} else {
			delete(last, r.Token)
		}
	}
	figure(t, "provider/429 retry_after=%v jobs=%d shortest_retry_gap=%v", retryAfter, len(toks), minGap.Round(time.Millisecond))
	if minGap < retryAfter-100*time.Millisecond {
		t.Errorf("a job was retried %v after a 429 with Retry-After %v", minGap, retryAfter)
	}
}

func TestReliabilityProviderFlaky(t *testing.T) {
	e := newRelEnv(t, "")
	apns, env := withAPNs(t, e)
	p := e.start(t, nil, env...)
	api := newRelAPI(p.api)
	cases := []struct {
		name string
		f    fake.Faults
	}{
		{"every-other-500", fake.Faults{FailEvery: 2}},
		{"reset-mid-stream", fake.Faults{ResetEvery: 3}},
	}
	for _, c := range cases {
		f0, a0 := e.fcm.FaultsInjected(), apns.FaultsInjected()
		if err := e.fcm.SetFaults(c.f); err != nil {
			t.Fatal(err)
		}
		if err := apns.SetFaults(c.f); err != nil {
			t.Fatal(err)
		}
		ftoks, _ := burst(t, api, "fcm", relFCMApp, c.name, 30)
		atoks, _ := burst(t, api, "apns", relAPNsApp, c.name, 30)
		waitAll(t, c.name+" FCM deliveries", ftoks, func() map[string]int { return deliveredFCM(e.fcm) })
		waitAll(t, c.name+" APNs deliveries", atoks, func() map[string]int { return deliveredAPNs(apns) })
		fi, ai := e.fcm.FaultsInjected()-f0, apns.FaultsInjected()-a0
		figure(t, "provider/%s jobs=%d delivered=%d faults_injected fcm=%d apns=%d", c.name, len(ftoks)+len(atoks), len(ftoks)+len(atoks), fi, ai)
		if fi == 0 || ai == 0 {
			t.Errorf("%s: no fault was injected", c.name)
		}
	}
}

func TestReliabilityProviderCertificateRotation(t *testing.T) {
	e := newRelEnv(t, "")
	apns, env := withAPNs(t, e)
	p := e.start(t, nil, env...)
	api := newRelAPI(p.api)
	first, _ := burst(t, api, "apns", relAPNsApp, "before", 10)
	waitAll(t, "deliveries before the rotation", first, func() map[string]int { return deliveredAPNs(apns) })
	if err := apns.RotateCertificate(); err != nil {
		t.Fatal(err)
	}
	second, _ := burst(t, api, "apns", relAPNsApp, "after", 10)
	waitAll(t, "deliveries after the rotation", second, func() map[string]int { return deliveredAPNs(apns) })
	figure(t, "provider/cert-rotation jobs=%d delivered=%d", len(first)+len(second), len(first)+len(second))
}
