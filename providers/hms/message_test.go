package hms

import (
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

func TestBuildMessage(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	badge := 120
	app := App{ID: "a", HighUrgency: true, BadgeClass: "com.example.Main"}
	cases := []struct {
		name string
		n    providers.Notification
		want string
	}{
		{"alert with all fields", providers.Notification{Title: "T", Body: "B", Sound: "ring", Badge: &badge,
			ThreadID: "chat7", CollapseID: "msg-1", ExpiresAt: now.Add(90 * time.Second)},
			`{"android":{"ttl":"90s","notification":{"title":"T","body":"B","sound":"ring","default_sound":false,"tag":"msg-1","group":"chat7","click_action":{"type":3},"badge":{"set_num":99,"class":"com.example.Main"}}},"token":null}`},
		{"numeric collapse id is collapse_key", providers.Notification{Body: "B", CollapseID: "5"},
			`{"android":{"collapse_key":5,"notification":{"body":"B","default_sound":true,"click_action":{"type":3}}},"token":null}`},
		{"data only, high urgency", providers.Notification{Data: json.RawMessage(`{ "a" : 1 }`)},
			`{"data":"{\"a\":1}","android":{"urgency":"HIGH"},"token":null}`},
		{"normal priority stays NORMAL", providers.Notification{Data: json.RawMessage(`{"a":1}`), Priority: "normal"},
			`{"data":"{\"a\":1}","android":{},"token":null}`},
		{"background drops the alert", providers.Notification{Title: "T", PushType: providers.PushBackground},
			`{"data":"{}","android":{"urgency":"HIGH"},"token":null}`},
		{"ttl capped at 15 days", providers.Notification{Body: "B", ExpiresAt: now.Add(30 * 24 * time.Hour)},
			`{"android":{"ttl":"1296000s","notification":{"body":"B","default_sound":true,"click_action":{"type":3}}},"token":null}`},
	}
	for _, c := range cases {
		m, err := buildMessage(&c.n, app, now)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		b, _ := json.Marshal(m)
		if string(b) != c.want {
			t.Errorf("%s:\n got %s\nwant %s", c.name, b, c.want)
		}
	}
	bad := []providers.Notification{
		{PushType: providers.PushVoIP, Body: "x"},
		{PushType: "weird", Body: "x"},
		{Priority: "urgent", Body: "x"},
		{Data: json.RawMessage(`[1]`)},
		{Data: json.RawMessage(`{"a":`)},
		{Badge: &badge},
		{Body: "x", ExpiresAt: now.Add(-time.Second)},
	}
	for i, n := range bad {
		if _, err := buildMessage(&n, app, now); !errors.Is(err, ErrInvalidMessage) {
			t.Errorf("bad %d: err = %v", i, err)
		}
	}
	if _, err := buildMessage(nil, app, now); !errors.Is(err, ErrInvalidMessage) {
		t.Errorf("nil: %v", err)
	}
	if err := CheckPayload(&providers.Notification{Body: "x"}); err != nil {
		t.Errorf("small payload: %v", err)
	}
}

func TestIllegalTokensAndRetryAfter(t *testing.T) {
	t.Parallel()
	got := illegalTokens(`{"success":1,"failure":2,"illegal_tokens":["x","y"]}`)
	if !got["x"] || !got["y"] || got["z"] {
		t.Fatalf("illegal = %v", got)
	}
	if illegalTokens("not json") != nil {
		t.Fatal("garbage parsed")
	}
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if d := retryAfter(now.Add(30*time.Second).Format(httpTimeFormat), now); d != 30*time.Second {
		t.Fatalf("date Retry-After = %v", d)
	}
	if retryAfter("-3", now) != 0 || retryAfter("soon", now) != 0 {
		t.Fatal("bad Retry-After accepted")
	}
}

const httpTimeFormat = "Mon, 02 Jan 2006 15:04:05 GMT"
