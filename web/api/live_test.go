package api

import (
	"strings"
	"testing"
)

func TestEventsEndpoint(t *testing.T) {
	a := newTestAPI(t)
	// A device for user 2, who is offline: the event's push becomes a job.
	if code, m := a.call("POST", "/api/v1/devices", map[string]any{"user": "2", "platform": "fcm", "token": "tok-2"}); code != 201 {
		t.Fatalf("device: %d %v", code, m)
	}
	code, m := a.call("POST", "/api/v1/events", map[string]any{"events": []any{
		map[string]any{"users": []string{"1", "2"}, "module_id": "IM", "command": "message", "params": map[string]any{"text": "hi"},
			"push": map[string]any{"title": "Anna", "body": "hi"}},
	}})
	if code != 202 {
		t.Fatalf("events: %d %v", code, m)
	}
	r := m["results"].([]any)[0].(map[string]any)
	if len(r["id"].(string)) != 26 || strings.Join(toStrings(r["pushed"]), ",") != "2" || strings.Join(toStrings(r["no_device"]), ",") != "1" {
		t.Fatalf("result %v", r)
	}
	if st, _ := a.srv.Queue.Stats(); st.Due+st.InFlight != 1 {
		t.Fatalf("queued jobs: %+v", st)
	}
}

func toStrings(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func TestEventsValidationRejectsWholeBatch(t *testing.T) {
	a := newTestAPI(t)
	ok := map[string]any{"users": []string{"1"}, "module_id": "m", "command": "c"}
	cases := []struct {
		bad   map[string]any
		field string
	}{
		{map[string]any{"module_id": "m", "command": "c"}, "events[1].users"},
		{map[string]any{"users": []string{"1"}, "command": "c"}, "events[1].module_id"},
		{map[string]any{"users": []string{"1"}, "module_id": "m", "command": "c", "expiry": -1}, "events[1].expiry"},
		{map[string]any{"users": []string{"1"}, "module_id": "m", "command": "c", "push": map[string]any{"push_type": "fax"}}, "events[1].push.push_type"},
		{map[string]any{"users": []string{"1"}, "module_id": "m", "command": "c", "push": map[string]any{"users": []string{"9"}}}, "events[1].push.users"},
		{map[string]any{"users": []string{"1"}, "module_id": "m", "command": "c", "ack_timeout": "soon"}, "events[1].ack_timeout"},
		{map[string]any{"users": []string{"1"}, "module_id": "m", "command": "c", "colour": 1}, "colour"},
	}
	for _, tc := range cases {
		code, m := a.call("POST", "/api/v1/events", map[string]any{"events": []any{ok, tc.bad}})
		c, f := errField(m)
		if code != 400 || c != "invalid_argument" || f != tc.field {
			t.Errorf("%v: %d %s %q, want %q", tc.bad, code, c, f, tc.field)
		}
	}
	if st := a.srv.Live.Hub().Stats(); st.HistoryEvents != 0 {
		t.Fatalf("rejected batches published %d events", st.HistoryEvents)
	}
	many := make([]string, 10001)
	for i := range many {
		many[i] = "u"
	}
	if code, m := a.call("POST", "/api/v1/events", map[string]any{"events": []any{map[string]any{"users": many, "module_id": "m", "command": "c"}}}); code != 400 {
		t.Fatalf("10001 recipients: %d %v", code, m)
	}
}

func TestWatchOnlineTokensConfigEndpoints(t *testing.T) {
	a := newTestAPI(t)
	if code, m := a.call("POST", "/api/v1/watch", map[string]any{"users": []string{"1", "2"}, "tags": []string{"CHAT"}, "ttl": 60}); code != 200 {
		t.Fatalf("watch: %d %v", code, m)
	}
	if code, m := a.call("GET", "/api/v1/watch/CHAT", nil); code != 200 || strings.Join(toStrings(m["users"]), ",") != "1,2" {
		t.Fatalf("list: %d %v", code, m)
	}
	code, m := a.call("POST", "/api/v1/watch/extend", map[string]any{"users": []string{"1"}, "tags": []string{"CHAT", "NONE"}})
	tags, _ := m["tags"].(map[string]any)
	if code != 200 || tags["CHAT"] != true || tags["NONE"] != false {
		t.Fatalf("extend: %d %v", code, m)
	}
	if code, m := a.call("DELETE", "/api/v1/watch", map[string]any{"users": []string{"2"}}); code != 200 || m["deleted"] != 1.0 {
		t.Fatalf("delete: %d %v", code, m)
	}
	if code, m := a.call("GET", "/api/v1/online?users=1,2", nil); code != 200 || m["users"].(map[string]any)["1"].(map[string]any)["online"] != false {
		t.Fatalf("online: %d %v", code, m)
	}
	if code, m := a.call("GET", "/api/v1/online", nil); code != 200 || m["users"] != 0.0 {
		t.Fatalf("totals: %d %v", code, m)
	}
	code, m = a.call("POST", "/api/v1/tokens", map[string]any{"user": "42", "ttl": 600, "tags": []string{"CHAT"}, "client": "web"})
	if code != 200 {
		t.Fatalf("token: %d %v", code, m)
	}
	cl, err := a.srv.Tokens.Verify(m["token"].(string))
	if err != nil || cl.User != "42" || !cl.Allows("CHAT") {
		t.Fatalf("minted token: %+v %v", cl, err)
	}
	for _, bad := range []map[string]any{{"user": ""}, {"user": "1", "ttl": 99999999}, {"user": "1", "client": "fridge"}} {
		if code, _ := a.call("POST", "/api/v1/tokens", bad); code != 400 {
			t.Errorf("token %v: %d", bad, code)
		}
	}
	code, m = a.call("GET", "/api/v1/config?user=42", nil)
	urls, _ := m["urls"].(map[string]any)
	if code != 200 || urls["websocket"] != "wss://push.example.com/sub/ws" || m["token"] == "" || len(m["epoch"].(string)) != 10 {
		t.Fatalf("config: %d %v", code, m)
	}
}
