package jsqueue

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/pushpull/pushpull/gateway/cluster/natstest"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/queue"
	"github.com/pushpull/pushpull/web/api"
)

var (
	_ push.Queue     = (*Queue)(nil)
	_ api.QueueAdmin = (*Queue)(nil)
)

// startServer runs an embedded nats-server with JetStream stored in dir.
func startServer(t testing.TB, dir string) *server.Server { return natstest.Server(t, dir) }

func connect(t testing.TB, s *server.Server) jetstream.JetStream {
	_, js := natstest.Connect(t, s)
	return js
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func openQueue(t *testing.T, js jetstream.JetStream, o Options) *Queue {
	t.Helper()
	if o.Logger == nil {
		o.Logger = quiet()
	}
	q, err := Open(context.Background(), js, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = q.Close() })
	return q
}

// newEnv starts a server and opens one queue on it.
func newEnv(t *testing.T, o Options) (*server.Server, jetstream.JetStream, *Queue) {
	t.Helper()
	s := startServer(t, t.TempDir())
	t.Cleanup(s.Shutdown)
	js := connect(t, s)
	return s, js, openQueue(t, js, o)
}

func job(user string) *queue.Job {
	return &queue.Job{NotificationID: "n-" + user, User: user, DeviceID: "d-" + user, Platform: "fcm", AppID: "app", Token: "tok", Payload: []byte(`{"a":1}`)}
}

func submit(t *testing.T, q *Queue, jobs ...*queue.Job) {
	t.Helper()
	if _, _, err := q.Submit(context.Background(), queue.Submission{Jobs: jobs}); err != nil {
		t.Fatal(err)
	}
}

// leaseWithin polls Lease until it returns at least one job or d passes.
func leaseWithin(t *testing.T, q *Queue, d time.Duration) []*queue.Job {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		jobs, err := q.Lease(context.Background(), 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) > 0 || time.Now().After(deadline) {
			return jobs
		}
		select {
		case <-q.Wakeup():
		case <-time.After(10 * time.Millisecond):
		}
	}
}

func mustLease(t *testing.T, q *Queue, max int) []*queue.Job {
	t.Helper()
	jobs, err := q.Lease(context.Background(), max)
	if err != nil {
		t.Fatal(err)
	}
	return jobs
}

func ids(jobs []*queue.Job) []string {
	out := make([]string, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}
