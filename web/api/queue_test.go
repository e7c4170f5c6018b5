package api

import (
	"context"
	"testing"

	"github.com/pushpull/pushpull/queue"
)

func TestQueueAdminEndpoints(t *testing.T) {
	a := newTestAPI(t)
	ctx := context.Background()
	q := a.srv.Queue.(*queue.Queue)
	jobs := []*queue.Job{
		{User: "1", Platform: "apns", Token: "t1", Payload: []byte(`{}`)},
		{User: "2", Platform: "fcm", Token: "t2", Payload: []byte(`{}`)},
		{User: "3", Platform: "fcm", Token: "t3", Payload: []byte(`{}`)},
	}
	if err := q.Enqueue(ctx, jobs...); err != nil {
		t.Fatal(err)
	}
	leased, err := q.Lease(ctx, 3)
	if err != nil || len(leased) != 3 {
		t.Fatalf("lease: %v %d", err, len(leased))
	}
	for _, j := range leased {
		if err := q.Dead(ctx, j, "rejected: BadTopic"); err != nil {
			t.Fatal(err)
		}
	}

	code, m := a.call("GET", "/api/v1/queue", nil)
	if code != 200 || m["dead"] != 3.0 || m["due"] != 0.0 {
		t.Fatalf("stats: %d %v", code, m)
	}
	code, m = a.call("GET", "/api/v1/queue/dead?limit=2", nil)
	if code != 200 || len(m["jobs"].([]any)) != 2 || m["next_cursor"] == "" {
		t.Fatalf("dead page 1: %d %v", code, m)
	}
	first := m["jobs"].([]any)[0].(map[string]any)
	if first["reason"] != "rejected: BadTopic" || first["token"] == "" {
		t.Fatalf("dead letter: %v", first)
	}
	code, m2 := a.call("GET", "/api/v1/queue/dead?limit=2&cursor="+m["next_cursor"].(string), nil)
	if code != 200 || len(m2["jobs"].([]any)) != 1 {
		t.Fatalf("dead page 2: %d %v", code, m2)
	}
	if code, m = a.call("GET", "/api/v1/queue/dead?limit=0", nil); code != 400 {
		t.Fatalf("bad limit: %d", code)
	}

	if code, m = a.call("POST", "/api/v1/queue/dead/retry", map[string]any{"ids": []string{first["id"].(string)}}); code != 200 || m["retried"] != 1.0 {
		t.Fatalf("retry: %d %v", code, m)
	}
	if code, m = a.call("POST", "/api/v1/queue/dead/retry", map[string]any{}); code != 400 {
		t.Fatalf("retry nothing: %d %v", code, m)
	}
	if code, m = a.call("DELETE", "/api/v1/queue/dead", map[string]any{"all": true}); code != 200 || m["deleted"] != 2.0 {
		t.Fatalf("delete all: %d %v", code, m)
	}
	st, _ := q.Stats()
	if st.Dead != 0 || st.Due != 1 {
		t.Fatalf("after admin: %+v", st)
	}
}
