package live

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
)

// fakeCluster stands in for the other nodes: a bus that records what it
// was given (or fails), and a presence view with remote users.
type fakeCluster struct {
	mu        sync.Mutex
	fail      error
	sent      [][]string
	remote    map[string]bool
	changes   []string
	forwarded []string
	recv      func(user, mid string)
}

func (f *fakeCluster) Forward(user, mid string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.forwarded = append(f.forwarded, mid+"|"+user)
}

func (f *fakeCluster) Receive(fn func(user, mid string)) { f.recv = fn }

func (f *fakeCluster) Publish(_ context.Context, channels []string, _ *hub.Event) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return "", f.fail
	}
	f.sent = append(f.sent, channels)
	return "17000000000000000000000001", nil
}

func (f *fakeCluster) SetLocal(user string, online bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := "-" + user
	if online {
		s = "+" + user
	}
	f.changes = append(f.changes, s)
}

func (f *fakeCluster) Remote(user string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.remote[user]
}

func newClusterSvc(t *testing.T, f *fakeCluster) (*Service, *clock, *nopPusher) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h, err := hub.New(hub.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	p := &nopPusher{}
	s, err := New(Options{Now: clk.Now, Bus: f, Presence: f, Acks: f}, h, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); h.Close() })
	return s, clk, p
}

// TestClusterSeams: events go to the bus (not straight to the hub), its
// mid is the answer, a bus failure is ErrUnavailable, a user online on
// another node counts as online (no push), and this node reports its own
// users' transitions once each.
func TestClusterSeams(t *testing.T) {
	f := &fakeCluster{remote: map[string]bool{"elsewhere": true}}
	s, clk, _ := newClusterSvc(t, f)
	res, err := s.Publish(context.Background(), []Event{{Users: []string{"elsewhere", "nobody"}, ModuleID: "m", Command: "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if res[0].ID != "17000000000000000000000001" || len(f.sent) != 1 || !slices.Equal(f.sent[0], []string{UserChannel("elsewhere"), UserChannel("nobody")}) {
		t.Fatalf("result %+v, bus got %v", res[0], f.sent)
	}
	if !slices.Equal(res[0].Online, []string{"elsewhere"}) {
		t.Fatalf("online %v: a user on another node must count as online", res[0].Online)
	}
	if st := s.Hub().Stats(); st.Published != 0 {
		t.Fatalf("the event also went straight to the local hub: %+v", st)
	}
	if got := s.Online([]string{"elsewhere"})["elsewhere"]; !got.Online {
		t.Fatalf("Online(elsewhere) = %+v", got)
	}

	f.fail = errors.New("no quorum")
	if _, err := s.Publish(context.Background(), []Event{{Users: []string{"x"}, ModuleID: "m", Command: "c"}}); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("bus failure: %v, want ErrUnavailable", err)
	}

	// Transitions: first connection on, second nothing, last off; a
	// poller on, then off once its next poll lapsed.
	s.Admit("u", "web")
	s.Admit("u", "mobile")
	s.Release("u", "web")
	s.Release("u", "mobile")
	s.Polled("p", "web", clk.Now().Add(time.Minute))
	s.Polled("p", "web", clk.Now().Add(2*time.Minute))
	clk.Add(3 * time.Minute)
	for _, u := range s.presence.lapsed(clk.Now()) {
		f.SetLocal(u, false)
	}
	if want := []string{"+u", "-u", "+p", "-p"}; !slices.Equal(f.changes, want) {
		t.Fatalf("transitions %v, want %v", f.changes, want)
	}
}

// TestClusterAcks: an ack for an event this node does not hold goes to
// the other nodes; an ack forwarded by another node cancels the pending
// push here.
func TestClusterAcks(t *testing.T) {
	f := &fakeCluster{remote: map[string]bool{}}
	s, _, _ := newClusterSvc(t, f)
	s.Ack("u", "elsewhere-mid")
	if !slices.Equal(f.forwarded, []string{"elsewhere-mid|u"}) {
		t.Fatalf("forwarded %v", f.forwarded)
	}
	s.awaitAcks("mine", []string{"u", "v"}, push.Request{}, time.Hour)
	f.recv("u", "mine")
	s.Ack("v", "mine") // held here: not forwarded
	if len(f.forwarded) != 1 {
		t.Fatalf("an ack held locally was forwarded: %v", f.forwarded)
	}
	s.ackMu.Lock()
	_, pending := s.acks["mine"]
	s.ackMu.Unlock()
	if pending {
		t.Fatal("the push still waits after both acks (one forwarded)")
	}
}
