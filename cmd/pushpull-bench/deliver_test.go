package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// runJSON runs one scenario against a freshly built server and returns its
// JSON line decoded.
func runJSON(t *testing.T, args ...string) map[string]any {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildServer(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	args = append(args, "-bin", bin, "-timeout", "60s")
	if err := run(ctx, args, &out, &errOut); err != nil {
		t.Fatalf("%s: %v\nstderr: %s", args[0], err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a summary and a JSON line, got %q", out.String())
	}
	var res map[string]any
	if err := json.Unmarshal([]byte(lines[1]), &res); err != nil {
		t.Fatalf("JSON line: %v: %s", err, lines[1])
	}
	return res
}

// Every accepted job reaches the fake provider through the real server,
// checked by id (-verify), for both providers.
func TestDeliverScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a real server")
	}
	for _, sc := range []string{"deliver-apns", "deliver-fcm"} {
		t.Run(sc, func(t *testing.T) {
			t.Parallel()
			res := runJSON(t, sc, "-devices", "20", "-jobs", "300", "-batch", "50", "-verify")
			extra := res["extra"].(map[string]any)
			if extra["delivered"].(float64) != 300 || extra["lost"].(float64) != 0 {
				t.Fatalf("%s: %v", sc, extra)
			}
			if res["throughput"].(float64) <= 0 || res["p99_ms"].(float64) <= 0 {
				t.Fatalf("%s: no throughput or latency: %v", sc, res)
			}
		})
	}
}

// Jobs queued while the provider fails survive a SIGKILL and all arrive
// after the restart.
func TestRecoveryScenario(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a real server")
	}
	t.Parallel()
	res := runJSON(t, "recovery", "-devices", "20", "-jobs", "500", "-batch", "50")
	extra := res["extra"].(map[string]any)
	if extra["accepted"].(float64) != 500 || extra["lost"].(float64) != 0 || extra["delivered"].(float64) < 500 {
		t.Fatalf("recovery: %v", extra)
	}
	if extra["first_delivery_seconds"].(float64) <= 0 {
		t.Fatalf("no first delivery time: %v", extra)
	}
}

// ordinalLatency pairs jobs and deliveries in order and never goes
// negative.
func TestOrdinalLatency(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	sends := []sent{{at: t0, jobs: 2}, {at: t0.Add(10 * time.Millisecond), jobs: 1}}
	arr := []time.Time{t0.Add(5 * time.Millisecond), t0.Add(7 * time.Millisecond), t0.Add(8 * time.Millisecond)}
	got := ordinalLatency(sends, arr)
	want := []int64{int64(5 * time.Millisecond), int64(7 * time.Millisecond), 0}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
}

// arrivals expands counter samples into one time per delivery after base.
func TestSamplerArrivals(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	s := &sampler{at: []time.Time{t0, t0.Add(time.Millisecond), t0.Add(3 * time.Millisecond)}, counts: []int64{5, 7, 8}}
	got := s.arrivals(5)
	if len(got) != 3 || !got[0].Equal(t0.Add(time.Millisecond)) || !got[1].Equal(got[0]) || !got[2].Equal(t0.Add(3*time.Millisecond)) {
		t.Fatalf("arrivals = %v", got)
	}
}

// pushUsersBodies spreads jobs over users and numbers them.
func TestPushUsersBodies(t *testing.T) {
	t.Parallel()
	bodies := pushUsersBodies(5, 2, 3, 0)
	if len(bodies) != 3 {
		t.Fatalf("%d bodies, want 3", len(bodies))
	}
	var req struct {
		Notifications []struct {
			Users []string          `json:"users"`
			Data  map[string]string `json:"data"`
		} `json:"notifications"`
	}
	if err := json.Unmarshal(bodies[2], &req); err != nil {
		t.Fatal(err)
	}
	if n := req.Notifications; len(n) != 1 || n[0].Users[0] != "u1" || n[0].Data["bid"] != "4" {
		t.Fatalf("last body %s", bodies[2])
	}
}
