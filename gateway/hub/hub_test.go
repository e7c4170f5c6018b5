package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	bad := map[string]Options{
		"Shards":        {Shards: -1},
		"HistorySize":   {HistorySize: -1},
		"HistoryBytes":  {HistoryBytes: -1},
		"QueueSize":     {QueueSize: -1},
		"MaxFrameBytes": {MaxFrameBytes: -1},
		"WriteTimeout":  {WriteTimeout: -time.Second},
		"SweepInterval": {SweepInterval: -time.Second},
		"Epoch":         {Epoch: 10_000_000_000},
	}
	for field, o := range bad {
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: got %v", field, err)
		}
		if _, err := New(o); !errors.Is(err, ErrInvalidOptions) {
			t.Errorf("New with bad %s: %v", field, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestPublishReachesExactlySubscribers(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	_, a := connect(t, h, "user:1", "shared")
	_, b := connect(t, h, "user:2", "shared")
	_, a2 := connect(t, h, "user:1")

	m1, reached := h.Publish([]string{"user:1"}, ev("one"))
	if fmt.Sprint(reached) != "[2]" {
		t.Fatalf("reached %v", reached)
	}
	m2, reached := h.Publish([]string{"shared"}, ev("all"))
	if fmt.Sprint(reached) != "[2]" {
		t.Fatalf("reached %v", reached)
	}
	m3, reached := h.Publish([]string{"user:3", "user:2"}, ev("two"))
	if fmt.Sprint(reached) != "[0 1]" {
		t.Fatalf("reached %v", reached)
	}
	want := map[*fakeTransport][]string{a: {m1, m2}, b: {m2, m3}, a2: {m1}}
	for tr, ids := range want {
		waitFor(t, "deliveries", func() bool { return len(tr.IDs(t)) >= len(ids) })
	}
	// A last marker event proves nothing else is still on its way.
	m4, _ := h.Publish([]string{"user:1", "user:2"}, ev("end"))
	want[a] = append(want[a], m4)
	want[b] = append(want[b], m4)
	want[a2] = append(want[a2], m4)
	for tr, ids := range want {
		waitFor(t, "marker", func() bool { return len(tr.IDs(t)) >= len(ids) })
		if got := tr.IDs(t); fmt.Sprint(got) != fmt.Sprint(ids) {
			t.Errorf("got %v want %v", got, ids)
		}
	}
	objs := b.Objects(t)
	if objs[0].Channel != "shared" || objs[1].Channel != "user" || objs[1].Command != "two" || objs[1].ModuleID != "im" {
		t.Fatalf("objects %+v", objs)
	}
}

func TestEventOnTwoChannelsOfOneConnDeliveredOnce(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	_, tr := connect(t, h, "user:1", "shared", "tag")
	m1, reached := h.Publish([]string{"user:1", "shared"}, ev("a"))
	if fmt.Sprint(reached) != "[1 1]" {
		t.Fatalf("reached %v", reached)
	}
	m2, _ := h.Publish([]string{"tag", "tag", "user:1"}, ev("b"))
	m3, _ := h.Publish([]string{"tag"}, ev("c"))
	waitFor(t, "3 events", func() bool { return len(tr.IDs(t)) >= 3 })
	// Resume from before them: the replay is de-duplicated too.
	tr2 := newFake()
	tr2c := h.NewConn(tr2, Native, ConnInfo{})
	res, err := h.Subscribe(tr2c, []string{"shared", "user:1", "tag"}, h.Epoch()+"0000000000000000")
	if err != nil || !res.Resumed || res.Replayed != 3 {
		t.Fatalf("resume %+v %v", res, err)
	}
	tr2c.Start(nil)
	t.Cleanup(func() { tr2c.Close(1000, "") })
	waitFor(t, "replay", func() bool { return len(tr2.IDs(t)) >= 3 })
	for _, got := range [][]string{tr.IDs(t), tr2.IDs(t)} {
		if fmt.Sprint(got) != fmt.Sprint([]string{m1, m2, m3}) {
			t.Fatalf("got %v", got)
		}
	}
}

func TestEncodeOncePerVariant(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	f := &countingFormat{}
	var trs []*fakeTransport
	for i := range 1000 {
		tr := newFake()
		c := h.NewConn(tr, f, ConnInfo{})
		chs := []string{"shared"}
		if i%2 == 0 {
			chs = append(chs, "user:even")
		}
		if _, err := h.Subscribe(c, chs, ""); err != nil {
			t.Fatal(err)
		}
		c.Start(nil)
		t.Cleanup(func() { c.Close(1000, "") })
		trs = append(trs, tr)
	}
	h.Publish([]string{"shared"}, ev("a"))
	h.Publish([]string{"user:even", "shared"}, ev("b"))
	for _, tr := range trs {
		waitFor(t, "2 events", func() bool { return len(tr.IDs(t)) == 2 })
	}
	// a: shared once; b: user variant once + shared variant once.
	if n := f.n.Load(); n != 3 {
		t.Fatalf("Encode called %d times, want 3", n)
	}
}

func TestHistoryBoundedByCount(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{HistorySize: 10})
	var mids []string
	for range 25 {
		m, _ := h.Publish([]string{"c"}, ev("x"))
		mids = append(mids, m)
	}
	res, _ := h.Since([]string{"c"}, mids[14])
	if !res.Resumed || len(res.Events) != 10 || res.Events[0].ID != mids[15] || res.Events[9].ID != mids[24] {
		t.Fatalf("since 14: resumed=%v n=%d", res.Resumed, len(res.Events))
	}
	if res.Channels[0] != "c" {
		t.Fatalf("channels %v", res.Channels)
	}
	// mids[14] was evicted: resuming from before it has a gap.
	if res, _ := h.Since([]string{"c"}, mids[13]); res.Resumed || len(res.Events) != 0 {
		t.Fatalf("since 13 should resync: %+v", res)
	}
	st := h.Stats()
	if st.HistoryEvents != 10 || st.Evicted != 15 || st.Channels != 1 {
		t.Fatalf("stats %+v", st)
	}
}

func TestHistoryBoundedByBytes(t *testing.T) {
	t.Parallel()
	const budget = 64 << 10
	h := newHub(t, Options{Shards: 4, HistoryBytes: budget})
	big := json.RawMessage(`"` + strings.Repeat("x", 1000) + `"`)
	var first, last string
	for i := range 2000 {
		e := ev("x")
		e.Params = big
		m, _ := h.Publish([]string{fmt.Sprintf("user:%d", i%50)}, e)
		if i == 0 {
			first = m
		}
		last = m
	}
	st := h.Stats()
	if st.HistoryBytes > budget || st.HistoryBytes < budget/2 || st.Evicted == 0 {
		t.Fatalf("stats %+v", st)
	}
	if res, _ := h.Since([]string{"user:0"}, first); res.Resumed {
		t.Fatal("oldest events evicted: resume must fail")
	}
	if res, _ := h.Since([]string{"user:49"}, last); !res.Resumed {
		t.Fatal("newest: resume must work")
	}
	// The eviction order does not grow without bound either.
	for _, sh := range h.shards {
		sh.mu.Lock()
		n := len(sh.order) - sh.orderHead
		sh.mu.Unlock()
		if n > 2*sh.events+1100 {
			t.Fatalf("order holds %d entries for %d events", n, sh.events)
		}
	}
}

func TestHistoryExpiry(t *testing.T) {
	t.Parallel()
	clk := newClock()
	h := newHub(t, Options{Now: clk.Now})
	short := ev("short")
	short.Expiry = time.Minute
	h.Publish([]string{"c"}, short)
	long := ev("long")
	long.Expiry = time.Hour
	mLong, _ := h.Publish([]string{"c"}, long)
	since := h.Epoch() + "0000000000000000"

	if res, _ := h.Since([]string{"c"}, since); len(res.Events) != 2 {
		t.Fatalf("before expiry: %d events", len(res.Events))
	}
	clk.Advance(2 * time.Minute)
	res, _ := h.Since([]string{"c"}, since)
	if !res.Resumed || len(res.Events) != 1 || res.Events[0].ID != mLong {
		t.Fatalf("after expiry: %+v", res)
	}
	clk.Advance(2 * time.Hour)
	h.Sweep()
	st := h.Stats()
	if st.HistoryEvents != 0 || st.HistoryBytes != 0 || st.Channels != 0 || st.Expired != 2 {
		t.Fatalf("after sweep: %+v", st)
	}
	// Expired is not a gap: a client that was away still resumes.
	if res, _ := h.Since([]string{"c"}, since); !res.Resumed {
		t.Fatal("expiry must not force a resync")
	}
}

func TestLiveOnlyNotStoredButDelivered(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	_, tr := connect(t, h, "user:1")
	e := ev("typing")
	e.Expiry = 0
	m, reached := h.Publish([]string{"user:1", "user:2"}, e)
	if fmt.Sprint(reached) != "[1 0]" {
		t.Fatalf("reached %v", reached)
	}
	waitFor(t, "live event", func() bool { return len(tr.IDs(t)) == 1 })
	if tr.IDs(t)[0] != m {
		t.Fatal("wrong id")
	}
	if res, _ := h.Since([]string{"user:1", "user:2"}, h.Epoch()+"0000000000000000"); len(res.Events) != 0 {
		t.Fatalf("live-only event stored: %+v", res)
	}
	if st := h.Stats(); st.Channels != 1 || st.HistoryEvents != 0 {
		t.Fatalf("stats %+v (user:2 must not be created)", st)
	}
}

func TestIdleChannelsRemoved(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{})
	c, _ := connect(t, h, "user:1", "shared")
	if st := h.Stats(); st.Channels != 2 || st.Conns != 1 {
		t.Fatalf("stats %+v", st)
	}
	c.Close(1000, "bye")
	if st := h.Stats(); st.Channels != 0 || st.Conns != 0 {
		t.Fatalf("after close %+v", st)
	}
	if h.Connections("user:1") != 0 {
		t.Fatal("still connected")
	}
}

func TestResyncCases(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{HistorySize: 2})
	m1, _ := h.Publish([]string{"c"}, ev("1"))
	h.Publish([]string{"c"}, ev("2"))
	h.Publish([]string{"c"}, ev("3"))
	cases := map[string]string{
		"other epoch": "1111111111" + m1[10:],
		"malformed":   "abc",
		"evicted":     m1[:25] + "0",
		"future":      h.Epoch() + "9999999999999999",
	}
	for name, since := range cases {
		c := h.NewConn(newFake(), Native, ConnInfo{})
		res, err := h.Subscribe(c, []string{"c"}, since)
		if err != nil || res.Resumed || res.Replayed != 0 {
			t.Errorf("%s: %+v %v", name, res, err)
		}
		if h.Connections("c") != 1 {
			t.Errorf("%s: not registered", name)
		}
		c.Close(1000, "")
		if pr, _ := h.Since([]string{"c"}, since); pr.Resumed || len(pr.Events) != 0 {
			t.Errorf("%s: Since %+v", name, pr)
		}
	}
	// Fresh connection: nothing replayed, Resumed false, LastID usable.
	c := h.NewConn(newFake(), Native, ConnInfo{})
	res, _ := h.Subscribe(c, []string{"c"}, "")
	if res.Resumed || res.Replayed != 0 || res.LastID != h.Epoch()+"0000000000000003" {
		t.Fatalf("fresh %+v", res)
	}
	c.Close(1000, "")
	if _, err := h.Subscribe(c, []string{"c"}, ""); !errors.Is(err, ErrClosed) {
		t.Fatalf("subscribe closed conn: %v", err)
	}
}

// TestResumeNoGapNoDuplicate races subscriptions with resume against a
// publisher: every connection must see exactly the events after its since,
// in order, replay first then live.
func TestResumeNoGapNoDuplicate(t *testing.T) {
	t.Parallel()
	h := newHub(t, Options{Shards: 4, HistorySize: 100000})
	chans := []string{"user:1", "shared"}
	stop := make(chan struct{})
	tokens := make(chan struct{}, 64) // publish budget, handed out per subscription
	var wg sync.WaitGroup
	var mu sync.Mutex
	published := map[string][]string{} // channel -> mids
	wg.Add(2)
	for p := range 2 {
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-tokens:
				}
				targets := [][]string{{"user:1"}, {"shared"}, {"user:1", "shared"}, {"other"}}[(i+p)%4]
				m, _ := h.Publish(targets, ev("x"))
				mu.Lock()
				for _, c := range targets {
					published[c] = append(published[c], m)
				}
				mu.Unlock()
			}
		}()
	}
	type sub struct {
		since string
		tr    *fakeTransport
		c     *Conn
	}
	var subs []sub
	since := ""
	for range 100 {
		// Subscribe while the publishers are mid-stream.
		for range 20 {
			tokens <- struct{}{}
		}
		tr := newFake()
		c := h.NewConn(tr, Native, ConnInfo{})
		res, err := h.Subscribe(c, chans, since)
		if err != nil {
			t.Fatal(err)
		}
		if since != "" && !res.Resumed {
			t.Fatalf("resume from %s failed", since)
		}
		c.Start(nil)
		subs = append(subs, sub{since: since, tr: tr, c: c})
		since = res.LastID
		if len(subs)%10 == 0 { // also resume from an event in the middle
			mu.Lock()
			if ids := published["shared"]; len(ids) > 5 {
				since = ids[len(ids)-5]
			}
			mu.Unlock()
		}
	}
	close(stop)
	wg.Wait()
	t.Logf("%d events published during %d subscriptions", len(published["user:1"])+len(published["shared"]), len(subs))
	// Expected for a subscriber: every mid on its channels after since,
	// de-duplicated, in order; everything before since not at all.
	all := map[string]bool{}
	for _, c := range chans {
		for _, m := range published[c] {
			all[m] = true
		}
	}
	var sorted []string
	for m := range all {
		sorted = append(sorted, m)
	}
	slices.Sort(sorted)
	for i, s := range subs {
		var want []string
		for _, m := range sorted {
			if s.since == "" || m > s.since {
				want = append(want, m)
			}
		}
		if code, _ := s.c.CloseCode(); code != 0 {
			t.Fatalf("sub %d closed with %d", i, code)
		}
		if s.since == "" {
			// A fresh subscriber gets a suffix of the stream (live from its
			// registration): check it is contiguous and ends at the end.
			got := s.tr.IDs(t)
			waitFor(t, "fresh tail", func() bool {
				got = s.tr.IDs(t)
				return len(got) > 0 && got[len(got)-1] == sorted[len(sorted)-1] || len(sorted) == 0
			})
			want = want[len(want)-len(got):]
			if fmt.Sprint(got) != fmt.Sprint(want) {
				for j := range got {
					if got[j] != want[j] {
						t.Fatalf("sub %d (fresh) got a non-contiguous stream at %d/%d: %v want %v", i, j, len(got), got[max(0, j-3):min(len(got), j+3)], want[max(0, j-3):min(len(want), j+3)])
					}
				}
			}
			continue
		}
		waitFor(t, "subscriber catches up", func() bool { return s.tr.Count() >= len(want) })
		if got := s.tr.IDs(t); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("sub %d since %s: got %d events, want %d\n got %v\nwant %v", i, s.since, len(got), len(want), got, want)
		}
	}
	for _, s := range subs {
		s.c.Close(1000, "")
	}
}
