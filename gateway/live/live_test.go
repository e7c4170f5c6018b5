package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
)

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type nopPusher struct {
	reqs []push.Request
	fail error // returned by Push when set
}

func (p *nopPusher) Push(_ context.Context, reqs []push.Request) ([]push.Result, error) {
	if p.fail != nil {
		return nil, p.fail
	}
	p.reqs = append(p.reqs, reqs...)
	out := make([]push.Result, len(reqs))
	for i, r := range reqs {
		out[i] = push.Result{Jobs: len(r.Users)}
		if len(r.Users) > 0 && r.Users[len(r.Users)-1] == "nodevice" {
			out[i].NoDevice = []string{"nodevice"}
		}
	}
	return out, nil
}

func newSvc(t testing.TB) (*Service, *clock, *nopPusher) {
	t.Helper()
	clk := &clock{t: time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)}
	h, err := hub.New(hub.Options{Now: clk.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	p := &nopPusher{}
	s, err := New(Options{Now: clk.Now}, h, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); h.Close() })
	return s, clk, p
}

func TestWatchExpiryExtendAndClientPermissions(t *testing.T) {
	s, clk, _ := newSvc(t)
	if err := s.AddWatch([]string{"1", "2"}, []string{"T"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.Watchers("T")); got != "[1 2]" {
		t.Fatalf("watchers %s", got)
	}
	clk.Add(50 * time.Second)
	if ex, _ := s.ExtendWatch([]string{"1"}, []string{"T", "U"}); !ex["T"] || ex["U"] {
		t.Fatalf("extend %v", ex)
	}
	clk.Add(20 * time.Second) // 2's watch lapsed, 1's was extended
	if got := fmt.Sprint(s.Watchers("T")); got != "[1]" {
		t.Fatalf("after expiry %s", got)
	}
	// 2 may extend its lapsed grant from the client; 3 may not, unless its token lists the tag.
	if err := s.ClientExtend("2", nil, []string{"T"}); err != nil {
		t.Fatal(err)
	}
	if err := s.ClientExtend("3", nil, []string{"T"}); !errors.Is(err, ErrForbidden) {
		t.Fatalf("ungranted: %v", err)
	}
	if err := s.ClientExtend("3", []string{"T"}, []string{"T"}); err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(s.Watchers("T")); got != "[1 2 3]" {
		t.Fatalf("after client extends %s", got)
	}
	if n, _ := s.DeleteWatch([]string{"1"}, nil); n != 1 {
		t.Fatalf("delete all of 1: %d", n)
	}
	if err := s.AddWatch([]string{"1"}, []string{"T"}, 48*time.Hour); err == nil {
		t.Fatal("ttl above max accepted")
	}
}

func TestPublishValidationNamesTheField(t *testing.T) {
	s, _, _ := newSvc(t)
	neg := -time.Second
	cases := []struct {
		ev    Event
		field string
	}{
		{Event{ModuleID: "m", Command: "c"}, "events[0].users"},
		{Event{Users: []string{""}, ModuleID: "m", Command: "c"}, "events[0].users[0]"},
		{Event{Users: []string{"1"}, Command: "c"}, "events[0].module_id"},
		{Event{Users: []string{"1"}, ModuleID: "m", Command: "c", Extra: json.RawMessage(`[1]`)}, "events[0].extra"},
		{Event{Users: []string{"1"}, ModuleID: "m", Command: "c", Expiry: &neg}, "events[0].expiry"},
		{Event{Users: []string{"1"}, ModuleID: "m", Command: "c", AckTimeout: time.Second}, "events[0].ack_timeout"},
	}
	for _, tc := range cases {
		_, err := s.Publish(context.Background(), []Event{tc.ev})
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tc.field {
			t.Errorf("%+v: err %v, want field %s", tc.ev, err, tc.field)
		}
	}
	if st := s.hub.Stats(); st.HistoryEvents != 0 {
		t.Fatalf("a rejected batch published something: %+v", st)
	}
}

func TestPublishStoresModuleLowercasedWithServerTime(t *testing.T) {
	s, clk, p := newSvc(t)
	zero := time.Duration(0)
	res, err := s.Publish(context.Background(), []Event{
		{Users: []string{"1"}, ModuleID: "IM", Command: "m", Extra: json.RawMessage(`{"a":1}`)},
		{Users: []string{"2"}, ModuleID: "im", Command: "m", Expiry: &zero},
		{Users: []string{"3", "nodevice"}, ModuleID: "im", Command: "m", Push: &push.Request{}},
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.hub.Since([]string{UserChannel("1")}, s.hub.Epoch()+"0000000000000000")
	if err != nil || len(got.Events) != 1 {
		t.Fatalf("history: %v %v", got, err)
	}
	ev := got.Events[0]
	var extra map[string]any
	json.Unmarshal(ev.Extra, &extra)
	if ev.ModuleID != "im" || extra["a"] != 1.0 || extra["server_time"] != clk.Now().Format(time.RFC3339) {
		t.Fatalf("event %+v extra %v", ev, extra)
	}
	if got, _ := s.hub.Since([]string{UserChannel("2")}, s.hub.Epoch()+"0000000000000000"); len(got.Events) != 0 {
		t.Fatal("expiry 0 was stored")
	}
	if fmt.Sprint(res[2].Pushed, res[2].NoDevice) != "[3] [nodevice]" || len(p.reqs) != 1 {
		t.Fatalf("push result %+v", res[2])
	}
}
