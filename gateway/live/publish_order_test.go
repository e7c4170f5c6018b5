package live

import (
	"context"
	"errors"
	"testing"

	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
)

// TestPublishNothingWhenPushesCannotBeQueued: when the queue refuses the
// push part, no event goes out live either, so the backend's retry of the
// whole call delivers each event once.
func TestPublishNothingWhenPushesCannotBeQueued(t *testing.T) {
	t.Parallel()
	s, _, p := newSvc(t)
	p.fail = errors.New("disk full")
	ev := Event{Users: []string{"42"}, ModuleID: "im", Command: "message",
		Push: &push.Request{Notification: providers.Notification{Body: "hi"}}}
	if _, err := s.Publish(context.Background(), []Event{ev}); !errors.Is(err, p.fail) {
		t.Fatalf("err = %v, want the queue's error", err)
	}
	if n := s.hub.Stats().HistoryEvents; n != 0 {
		t.Fatalf("history after a failed publish holds %d events", n)
	}
	p.fail = nil
	res, err := s.Publish(context.Background(), []Event{ev})
	if err != nil || res[0].ID == "" || len(res[0].Pushed) != 1 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	if n := s.hub.Stats().HistoryEvents; n != 1 {
		t.Fatalf("history after the retry holds %d events, want 1", n)
	}
}
