package main

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/cluster/natstest"
)

// TestClusterNATSServerLost: two gateway nodes on a three-server NATS
// cluster with replicas = 3; one NATS server stops while pushes are being
// accepted. Every push answered 202 is delivered; the gateway keeps
// accepting on the two servers left.
func TestClusterNATSServerLost(t *testing.T) {
	servers := natstest.Cluster(t, 3)
	cf := newClusterFixture(t, natstest.URLs(servers))
	cf.extra = "replicas = 3\n"
	nodes := []*relProc{cf.node(t, "a", 10*time.Second), cf.node(t, "b", 10*time.Second)}

	var (
		mu       sync.Mutex
		accepted []string
		refused  int
		afterN   int // accepted after the server stopped
	)
	stopped := make(chan struct{})
	var wg sync.WaitGroup
	for w, p := range nodes {
		api := newRelAPI(p.api)
		wg.Go(func() {
			for i := range 150 {
				tok := fmt.Sprintf("w%d-%03d", w, i)
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				status, _, err := api.do(ctx, http.MethodPost, "/api/v1/push", pushBody([]string{tok}, 3600, i))
				cancel()
				mu.Lock()
				if err == nil && status == http.StatusAccepted {
					accepted = append(accepted, tok)
					select {
					case <-stopped:
						afterN++
					default:
					}
				} else {
					refused++
				}
				mu.Unlock()
				time.Sleep(20 * time.Millisecond) // spread the load over the outage
			}
		})
	}
	waitFor(t, 30*time.Second, "pushes flowing", func() bool { mu.Lock(); defer mu.Unlock(); return len(accepted) >= 40 })
	// Stop the meta leader: the harshest single loss.
	victim := natstest.Leader(servers)
	if victim == nil {
		victim = servers[0]
	}
	victim.Shutdown()
	close(stopped)
	wg.Wait()

	mu.Lock()
	defer mu.Unlock()
	waitFor(t, 60*time.Second, "every accepted push delivered", func() bool {
		got := deliveredFCM(cf.fcm)
		for _, tok := range accepted {
			if got[tok] == 0 {
				return false
			}
		}
		return true
	})
	figure(t, "cluster/nats-server-lost accepted=%d refused=%d accepted_after_loss=%d", len(accepted), refused, afterN)
	if afterN == 0 {
		t.Fatal("nothing accepted after one of three NATS servers stopped")
	}
}
