package hub

import (
	"context"
	"testing"
)

func TestEventCounters(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	_, ft := connect(t, h, "user:1")
	h.Publish([]string{"user:1"}, ev("a"))
	h.Publish([]string{"user:1", "shared"}, ev("b")) // one connection, one delivery
	h.Publish([]string{"user:2"}, ev("c"))           // nobody live
	waitFor(t, "two events written", func() bool { return ft.Count() == 2 })
	st := h.Stats()
	if st.Published != 3 || st.Delivered != 2 || st.Replayed != 0 || st.Polled != 0 {
		t.Fatalf("after publishes: %+v", st)
	}

	// A resume from the first event replays the later two of user:1 and shared.
	first := ft.IDs(t)[0]
	c2 := h.NewConn(newFake(), Native, ConnInfo{})
	t.Cleanup(func() { c2.Close(1000, "") })
	if res, err := h.Subscribe(c2, []string{"user:1"}, first); err != nil || res.Replayed != 1 {
		t.Fatalf("resume: %+v %v", res, err)
	}
	res, err := h.Since([]string{"user:2"}, first)
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("since: %+v %v", res, err)
	}
	res, err = h.Poll(context.Background(), []string{"user:1", "shared"}, first, 0)
	if err != nil || len(res.Events) != 1 {
		t.Fatalf("poll: %+v %v", res, err)
	}
	if st := h.Stats(); st.Replayed != 1 || st.Polled != 2 || st.Published != 3 {
		t.Fatalf("after resume and polls: %+v", st)
	}
}

// A connection cut as a slow consumer drops its queue and the event that
// overflowed it.
func TestDroppedSlowCountsEvents(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{QueueSize: 4})
	c := h.NewConn(newFake(), Native, ConnInfo{}) // not started: nothing is written
	if _, err := h.Subscribe(c, []string{"user:1"}, ""); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		h.Publish([]string{"user:1"}, ev(string(rune('a'+i))))
	}
	<-c.Done()
	st := h.Stats()
	if st.SlowClosed != 1 || st.DroppedSlow != 5 || st.Delivered != 4 {
		t.Fatalf("stats %+v, want 1 slow close, 5 dropped, 4 delivered", st)
	}
	h.Publish([]string{"user:1"}, ev("f")) // nobody left
	if st := h.Stats(); st.DroppedSlow != 5 {
		t.Fatalf("dropped moved without a cut: %+v", st)
	}
}

func TestSubscribersByLabel(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	a := h.NewConn(newFake(), Native, ConnInfo{User: "1"}) // defaults: websocket, native
	b := h.NewConn(newFake(), Native, ConnInfo{User: "1", Transport: TransportSSE})
	c := h.NewConn(newFake(), Native, ConnInfo{User: "2", Protocol: ProtocolBitrixV5})
	done := h.Track(ConnInfo{Transport: TransportLongPoll, Protocol: ProtocolBitrixV3})
	find := func(tr, proto string) LabelCount {
		for _, s := range h.Subscribers() {
			if s.Transport == tr && s.Protocol == proto {
				return s
			}
		}
		return LabelCount{}
	}
	check := func(tr, proto string, open int, total uint64) {
		t.Helper()
		if got := find(tr, proto); got.Open != open || got.Total != total {
			t.Errorf("%s/%s = open %d total %d, want %d %d", tr, proto, got.Open, got.Total, open, total)
		}
	}
	check("websocket", "native", 1, 1)
	check("sse", "native", 1, 1)
	check("websocket", "bitrix_v5", 1, 1)
	check("longpoll", "bitrix_v3", 1, 1)

	a.Close(1000, "")
	c.Close(1000, "")
	done()
	done() // idempotent
	check("websocket", "native", 0, 1)
	check("websocket", "bitrix_v5", 0, 1)
	check("longpoll", "bitrix_v3", 0, 1)
	check("sse", "native", 1, 1)
	b.Close(1000, "")
	check("sse", "native", 0, 1)
}
