package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// freePorts returns n loopback ports free at the time of the call.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// startNATSCluster runs three nats-servers with JetStream, routed to each
// other, in the test process.
func startNATSCluster(t *testing.T) []*server.Server {
	t.Helper()
	routes := freePorts(t, 3)
	var urls []string
	for _, p := range routes {
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", p))
	}
	var servers []*server.Server
	for i := range 3 {
		s, err := server.NewServer(&server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "pushpull-test", Host: "127.0.0.1", Port: routes[i]},
			Routes:  server.RoutesFromStr(strings.Join(urls, ",")),
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Start()
		servers = append(servers, s)
		t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	}
	for _, s := range servers {
		if !s.ReadyForConnections(10 * time.Second) {
			t.Fatal("nats-server not ready")
		}
	}
	// JetStream is usable once the servers elected a meta leader.
	nc, err := nats.Connect(servers[0].ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	waitFor(t, 30*time.Second, "a JetStream meta leader", func() bool {
		for _, s := range servers {
			if s.JetStreamIsLeader() {
				return true
			}
		}
		return false
	})
	return servers
}

// TestClusterNATSServerLost: two gateway nodes on a three-server NATS
// cluster with replicas = 3; one NATS server stops while pushes are being
// accepted. Every push answered 202 is delivered; the gateway keeps
// accepting on the two servers left.
func TestClusterNATSServerLost(t *testing.T) {
	servers := startNATSCluster(t)
	var urls []string
	for _, s := range servers {
		urls = append(urls, s.ClientURL())
	}
	cf := newClusterFixture(t, strings.Join(urls, ","))
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
	victim := servers[0]
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			victim = s
		}
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
