package live

import (
	"context"
	"strconv"
	"testing"

	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
)

// BenchmarkPublish100Users: one event with a push block to 100 users
// (none online), the shape of a chat message to a group: recipients,
// online split, the push request, the hub publish.
func BenchmarkPublish100Users(b *testing.B) {
	s, _, p := newSvc(b)
	users := make([]string, 100)
	for i := range users {
		users[i] = "u" + strconv.Itoa(i)
	}
	ev := Event{Users: users, ModuleID: "im", Command: "message",
		Push: &push.Request{Notification: providers.Notification{Body: "hi"}}}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Publish(ctx, []Event{ev}); err != nil {
			b.Fatal(err)
		}
		p.reqs = p.reqs[:0]
	}
}
