package natstest

import (
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestClusterReplicates: a stream with three replicas can be created on
// the cluster and written through any server.
func TestClusterReplicates(t *testing.T) {
	servers := Cluster(t, 3)
	_, js := Connect(t, servers[2])
	if _, err := js.CreateStream(t.Context(), jetstream.StreamConfig{Name: "T", Subjects: []string{"t"}, Replicas: 3}); err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(t.Context(), "t", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if Leader(servers) == nil || URLs(servers) == "" {
		t.Fatal("no leader or urls")
	}
}
