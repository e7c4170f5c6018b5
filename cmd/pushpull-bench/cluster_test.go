package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Three real nodes on the embedded nats-server: clients spread over them
// get every event published through any node, and every job enqueued
// through the first node is sent exactly once by some node.
func TestClusterScenarios(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts three real servers and a nats-server")
	}
	t.Run("fanout", func(t *testing.T) {
		t.Parallel()
		res := runJSON(t, "fanout", "-cluster", "3", "-clients", "30", "-events", "20", "-publish-all")
		extra := res["extra"].(map[string]any)
		if res["params"].(map[string]any)["cluster"].(float64) != 3 {
			t.Fatalf("params: %v", res["params"])
		}
		// Clients on the second and third node only get events published
		// through the others if the nodes really share the event stream.
		if extra["expected"].(float64) != 600 || extra["delivered"].(float64) != 600 {
			t.Fatalf("want 600 of 600 events delivered: %v", extra)
		}
		if n := len(extra["node_rss_kib"].([]any)); n != 3 {
			t.Fatalf("RSS of %d nodes, want 3: %v", n, extra)
		}
		if res["p99_ms"].(float64) <= 0 {
			t.Fatalf("no latency: %v", res)
		}
	})
	t.Run("deliver-apns", func(t *testing.T) {
		t.Parallel()
		res := runJSON(t, "deliver-apns", "-cluster", "3", "-devices", "20", "-jobs", "300", "-batch", "50", "-verify")
		extra := res["extra"].(map[string]any)
		if extra["delivered"].(float64) != 300 || extra["lost"].(float64) != 0 || extra["duplicates"].(float64) != 0 {
			t.Fatalf("want 300 delivered once each: %v", extra)
		}
		split := extra["node_delivered"].([]any)
		sum := 0.0
		for _, v := range split {
			sum += v.(float64)
		}
		if len(split) != 3 || sum != 300 {
			t.Fatalf("per-node sends %v, want 3 nodes adding up to 300", split)
		}
	})
}

// -cluster starts its own nodes, so it is refused with -target before
// anything is built or started.
func TestClusterWithTargetRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	if err := os.WriteFile(secret, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var out, errOut bytes.Buffer
	err := run(ctx, []string{"fanout", "-cluster", "3", "-target", "http://127.0.0.1:1",
		"-target-key-file", secret, "-target-jwt-secret-file", secret}, &out, &errOut)
	if !errors.Is(err, errClusterTarget) {
		t.Fatalf("err = %v, want errClusterTarget", err)
	}
}
