package cluster

import (
	"sync"
	"testing"
)

// TestAcksReachOtherNodes: an ack forwarded on one connection reaches the
// receiver of another, user and mid intact (user ids may contain spaces).
func TestAcksReachOtherNodes(t *testing.T) {
	t.Parallel()
	s := natsServer(t, t.TempDir())
	ncA, _ := jsOn(t, s)
	ncB, _ := jsOn(t, s)
	a, err := NewAcks(ncA, "")
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := NewAcks(ncB, "")
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	var mu sync.Mutex
	var got []string
	b.Receive(func(user, mid string) {
		mu.Lock()
		got = append(got, mid+"|"+user)
		mu.Unlock()
	})
	if err := ncB.Flush(); err != nil {
		t.Fatal(err)
	}
	a.Forward("user 42", "17000000000000000000000009")
	waitUntil(t, "the ack on B", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	if got[0] != "17000000000000000000000009|user 42" {
		t.Fatalf("got %q", got[0])
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal("second Close:", err)
	}
}
