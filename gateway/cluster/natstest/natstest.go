// Package natstest runs nats-server with JetStream inside a test process,
// for the tests of the cluster engines (queue/jsqueue, devices/kvregistry,
// gateway/cluster and its users). Servers listen on loopback, log
// nothing, store in a temporary directory and are shut down when the test
// ends. It is imported by tests only.
package natstest

import (
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server starts a server storing in dir (a new temporary directory when
// dir is "") on a random port.
func Server(t testing.TB, dir string) *server.Server {
	t.Helper()
	return ServerAt(t, dir, server.RANDOM_PORT)
}

// ServerAt is Server on a given port, so that a server restarted on the
// same directory is found again by clients that reconnect.
func ServerAt(t testing.TB, dir string, port int) *server.Server {
	t.Helper()
	if dir == "" {
		dir = t.TempDir()
	}
	return start(t, &server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true})
}

func start(t testing.TB, o *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(o)
	if err != nil {
		t.Fatalf("nats-server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// Connect opens a connection of its own to s (one simulated node), closed
// when the test ends.
func Connect(t testing.TB, s *server.Server, opts ...nats.Option) (*nats.Conn, jetstream.JetStream) {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), opts...)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return nc, js
}

// Cluster starts n servers with JetStream routed into one cluster and
// returns once they elected a JetStream meta leader.
func Cluster(t testing.TB, n int) []*server.Server {
	t.Helper()
	ports := make([]int, n)
	var ls []net.Listener
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	routes := make([]string, n)
	for i, l := range ls {
		routes[i] = fmt.Sprintf("nats://127.0.0.1:%d", ports[i])
		l.Close()
	}
	servers := make([]*server.Server, n)
	for i := range servers {
		servers[i] = start(t, &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1), Host: "127.0.0.1", Port: server.RANDOM_PORT,
			JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true,
			Cluster: server.ClusterOpts{Name: "pushpull-test", Host: "127.0.0.1", Port: ports[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		})
	}
	deadline := time.Now().Add(30 * time.Second)
	for Leader(servers) == nil {
		if time.Now().After(deadline) {
			t.Fatal("no JetStream meta leader elected")
		}
		time.Sleep(20 * time.Millisecond)
	}
	return servers
}

// Leader returns the server that is the JetStream meta leader, or nil.
func Leader(servers []*server.Server) *server.Server {
	for _, s := range servers {
		if s.JetStreamIsLeader() {
			return s
		}
	}
	return nil
}

// URLs joins the servers' client URLs as a NATS URL list.
func URLs(servers []*server.Server) string {
	urls := make([]string, len(servers))
	for i, s := range servers {
		urls[i] = s.ClientURL()
	}
	return strings.Join(urls, ",")
}
