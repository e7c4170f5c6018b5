package client

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/live"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/gateway/token"
	"github.com/pushpull/pushpull/web/api"
	"github.com/pushpull/pushpull/web/apierr"
)

// recordingPusher records push requests instead of queueing jobs.
type recordingPusher struct {
	mu   sync.Mutex
	reqs []push.Request
}

func (p *recordingPusher) Push(_ context.Context, reqs []push.Request) ([]push.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]push.Result, len(reqs))
	for i, r := range reqs {
		p.reqs = append(p.reqs, r)
		out[i] = push.Result{ID: fmt.Sprintf("n_%d", len(p.reqs)), Jobs: len(r.Users)}
	}
	return out, nil
}

func (p *recordingPusher) users() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for _, r := range p.reqs {
		out = append(out, r.Users...)
	}
	return out
}

type liveEnv struct {
	t      *testing.T
	hub    *hub.Hub
	svc    *live.Service
	pusher *recordingPusher
	tokens *token.Issuer
	url    string
}

func newLiveEnv(t *testing.T, ho hub.Options, lo live.Options) *liveEnv {
	t.Helper()
	ho.Logger = slog.New(slog.DiscardHandler)
	h, err := hub.New(ho)
	if err != nil {
		t.Fatal(err)
	}
	p := &recordingPusher{}
	svc, err := live.New(lo, h, p)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := token.New(token.Options{Secret: []byte(strings.Repeat("k", 32))})
	if err != nil {
		t.Fatal(err)
	}
	e := echo.New()
	e.HTTPErrorHandler = apierr.Handler(slog.New(slog.NewTextHandler(io.Discard, nil)), api.MapError)
	RegisterLive(e, svc, tokens, LiveOptions{PingInterval: time.Second, PerIP: RateLimit{Rate: 1000, Burst: 1000}})
	srv := httptest.NewServer(e)
	t.Cleanup(func() {
		h.CloseAll(1001, "test over")
		srv.Close()
		svc.Close()
		h.Close()
	})
	return &liveEnv{t: t, hub: h, svc: svc, pusher: p, tokens: tokens, url: srv.URL}
}

func (e *liveEnv) token(user string, tags ...string) string {
	tok, _, err := e.tokens.Mint(user, time.Hour, tags, "")
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

func (e *liveEnv) publish(ev live.Event) live.PublishResult {
	e.t.Helper()
	if ev.ModuleID == "" {
		ev.ModuleID, ev.Command = "test", "tick"
	}
	res, err := e.svc.Publish(context.Background(), []live.Event{ev})
	if err != nil {
		e.t.Fatal(err)
	}
	return res[0]
}

// wsClient is a real WebSocket client reading frames in the background.
type wsClient struct {
	t    *testing.T
	c    *websocket.Conn
	msgs chan map[string]any
	done chan struct{}
	code websocket.StatusCode
}

func (e *liveEnv) dial(user, since string) *wsClient {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	u := "ws" + strings.TrimPrefix(e.url, "http") + "/sub/ws?token=" + e.token(user)
	if since != "" {
		u += "&since=" + since
	}
	c, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetReadLimit(16 << 20)
	w := &wsClient{t: e.t, c: c, msgs: make(chan map[string]any, 10000), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			_, b, err := c.Read(context.Background())
			if err != nil {
				w.code = websocket.CloseStatus(err)
				return
			}
			for _, line := range strings.Split(string(b), "\n") {
				var m map[string]any
				if json.Unmarshal([]byte(line), &m) == nil {
					w.msgs <- m
				}
			}
		}
	}()
	e.t.Cleanup(func() { c.CloseNow() })
	w.expect("welcome")
	return w
}

// next returns the next message or fails after a deadline.
func (w *wsClient) next() map[string]any {
	w.t.Helper()
	select {
	case m := <-w.msgs:
		return m
	case <-time.After(5 * time.Second):
		w.t.Fatal("no message within 5s")
		return nil
	}
}

func (w *wsClient) expect(typ string) map[string]any {
	w.t.Helper()
	m := w.next()
	if m["type"] != typ {
		w.t.Fatalf("got %v, want type %s", m, typ)
	}
	return m
}

// quiet asserts nothing arrives for a short while.
func (w *wsClient) quiet() {
	w.t.Helper()
	select {
	case m := <-w.msgs:
		w.t.Fatalf("unexpected message %v", m)
	case <-time.After(150 * time.Millisecond):
	}
}

func TestWebSocketDeliveryOnlyToRecipients(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	a1, a2, b := e.dial("alice", ""), e.dial("alice", ""), e.dial("bob", "")
	r := e.publish(live.Event{Users: []string{"alice"}, Params: json.RawMessage(`{"n":1}`)})
	if fmt.Sprint(r.Online) != "[alice]" {
		t.Fatalf("online = %v", r.Online)
	}
	for _, c := range []*wsClient{a1, a2} {
		m := c.expect("event")
		if m["id"] != r.ID || m["channel"] != "user" || m["module_id"] != "test" {
			t.Fatalf("event %v", m)
		}
		extra := m["extra"].(map[string]any)
		if extra["server_time"] == nil || extra["server_time_unix"] == nil {
			t.Fatalf("extra lacks server time: %v", extra)
		}
	}
	b.quiet()
	e.publish(live.Event{Shared: true})
	for _, c := range []*wsClient{a1, a2, b} {
		if m := c.expect("event"); m["channel"] != "shared" {
			t.Fatalf("shared: %v", m)
		}
	}
	e.publish(live.Event{Users: []string{"alice", "bob"}, SkipUsers: []string{"bob"}})
	a1.expect("event")
	b.quiet()
	// Client ops.
	if err := a1.c.Write(context.Background(), websocket.MessageText, []byte(`{"op":"ping"}`)); err != nil {
		t.Fatal(err)
	}
	a1.expect("pong")
	a1.c.Write(context.Background(), websocket.MessageText, []byte(`{"op":"nonsense"}`))
	a1.expect("error")
}

func TestWebSocketTagsAndWatchPermissions(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	a := e.dial("alice", "")
	if err := e.svc.AddWatch([]string{"alice"}, []string{"CHAT_1"}, time.Minute); err != nil {
		t.Fatal(err)
	}
	e.publish(live.Event{Tags: []string{"CHAT_1"}})
	a.expect("event")
	// Extending a tag never granted is refused; a granted one is fine.
	a.c.Write(context.Background(), websocket.MessageText, []byte(`{"op":"watch","tags":["SECRET"]}`))
	if m := a.expect("error"); m["code"] != "permission_denied" {
		t.Fatalf("watch secret: %v", m)
	}
	for tok, want := range map[string]int{e.token("alice"): 200, e.token("mallory"): 403, e.token("eve", "CHAT_1"): 200} {
		req, _ := http.NewRequest("POST", e.url+"/sub/watch", strings.NewReader(`{"tags":["CHAT_1"]}`))
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != want {
			t.Errorf("POST /sub/watch: %d, want %d", res.StatusCode, want)
		}
	}
	if got := e.svc.Watchers("CHAT_1"); fmt.Sprint(got) != "[alice eve]" {
		t.Fatalf("watchers = %v", got)
	}
}

func TestWebSocketResumeNoGapNoDuplicate(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			e.publish(live.Event{Users: []string{"carol"}, Params: json.RawMessage(fmt.Sprint(i))})
			time.Sleep(time.Millisecond) // pace the publisher, not a wait for a condition
		}
	}()
	seen := map[string]bool{}
	last := ""
	for round := 0; round < 5; round++ {
		c := e.dial("carol", last)
		for n := 0; n < 20; n++ {
			m := c.next()
			if m["type"] == "resync" {
				t.Fatalf("round %d: resync on a resumable id", round)
			}
			id := m["id"].(string)
			if seen[id] {
				t.Fatalf("round %d: duplicate %s", round, id)
			}
			// One publisher, one channel: mids are consecutive, so any
			// skipped number is a lost event.
			if last != "" && counter(id) != counter(last)+1 {
				t.Fatalf("round %d: %s after %s: gap or reorder", round, id, last)
			}
			seen[id] = true
			last = id
		}
		c.c.Close(websocket.StatusNormalClosure, "bye")
		<-c.done
	}
	close(stop)
	wg.Wait()
	if len(seen) != 100 {
		t.Fatalf("saw %d events", len(seen))
	}
}

func TestWebSocketResyncAndAuth(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	c := e.dial("dave", "12345678900000000000000001") // another epoch
	c.expect("resync")
	for _, u := range []string{"/sub/ws?token=garbage", "/sub/ws", "/sub/poll?token=a.b.c"} {
		res, err := http.Get(e.url + u)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 401 {
			t.Errorf("%s: %d", u, res.StatusCode)
		}
	}
}

func TestWebSocketConnectionCap(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{MaxConnsPerUser: 2})
	e.dial("erin", "")
	e.dial("erin", "")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/sub/ws?token="+e.token("erin"), nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = c.Read(ctx)
	if websocket.CloseStatus(err) != CloseTooManyConns {
		t.Fatalf("third connection: %v", err)
	}
}

func TestSlowConsumerCutWhileFastOneKeepsUp(t *testing.T) {
	e := newLiveEnv(t, hub.Options{QueueSize: 8}, live.Options{})
	fast := e.dial("frank", "")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	// The slow client never reads after the welcome.
	slow, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.url, "http")+"/sub/ws?token="+e.token("frank"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer slow.CloseNow()
	big := json.RawMessage(`"` + strings.Repeat("x", 64<<10) + `"`)
	got := 0
	for i := 0; i < 400; i++ {
		e.publish(live.Event{Users: []string{"frank"}, Params: big})
		if m := fast.next(); m["type"] == "event" {
			got++
		}
	}
	if got != 400 {
		t.Fatalf("fast client got %d", got)
	}
	if st := e.hub.Stats(); st.SlowClosed == 0 {
		t.Fatalf("slow consumer not cut: %+v", st)
	}
}

func getJSON(t *testing.T, url string, hdr map[string]string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(res.Body).Decode(&m)
	return res.StatusCode, m
}

func TestLongPollWakesAndTimesOut(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	tok := e.token("gina")
	done := make(chan map[string]any, 1)
	go func() {
		_, m := getJSON(t, e.url+"/sub/poll?wait=20&token="+tok, nil)
		done <- m
	}()
	// Publish until the held poll has been registered and answers.
	var m map[string]any
	deadline := time.After(10 * time.Second)
	for m == nil {
		select {
		case m = <-done:
		case <-time.After(50 * time.Millisecond):
			if e.svc.IsOnline("gina") {
				e.publish(live.Event{Users: []string{"gina"}})
			}
		case <-deadline:
			t.Fatal("long poll did not wake")
		}
	}
	if evs := m["events"].([]any); len(evs) == 0 {
		t.Fatalf("poll answer %v", m)
	}
	start := time.Now()
	code, m := getJSON(t, e.url+"/sub/poll?wait=1&since="+m["last_id"].(string)+"&token="+tok, nil)
	if code != 200 || len(m["events"].([]any)) != 0 || time.Since(start) < 900*time.Millisecond {
		t.Fatalf("timeout poll: %d %v after %v", code, m, time.Since(start))
	}
	if code, _ := getJSON(t, e.url+"/sub/poll?wait=61&token="+tok, nil); code != 400 {
		t.Fatalf("wait=61: %d", code)
	}
}

func TestShortPollSchedule602010(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	tok := e.token("hank")
	poll := func(since string) map[string]any {
		_, m := getJSON(t, e.url+"/sub/poll?wait=0&since="+since+"&token="+tok, nil)
		return m
	}
	m := poll("")
	if m["next_poll_in"] != 60.0 {
		t.Fatalf("first empty poll: %v", m)
	}
	e.publish(live.Event{Users: []string{"hank"}})
	res := poll(e.hub.Epoch() + "0000000000000000")
	if len(res["events"].([]any)) != 1 || res["next_poll_in"] != 10.0 {
		t.Fatalf("poll with an event: %v", res)
	}
	id := res["last_id"].(string)
	var got []any
	for i := 0; i < 6; i++ {
		got = append(got, poll(id)["next_poll_in"])
	}
	if fmt.Sprint(got) != "[20 20 20 20 60 60]" {
		t.Fatalf("schedule after events: %v", got)
	}
}

func TestSSEResumeWithLastEventID(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	first := e.publish(live.Event{Users: []string{"ivy"}, Params: json.RawMessage(`1`)})
	e.publish(live.Event{Users: []string{"ivy"}, Params: json.RawMessage(`2`)})
	e.publish(live.Event{Users: []string{"ivy"}, Params: json.RawMessage(`3`)})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", e.url+"/sub/sse?token="+e.token("ivy"), nil)
	req.Header.Set("Last-Event-ID", first.ID)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if ct := res.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Fatalf("content type %q", ct)
	}
	var text strings.Builder
	buf := make([]byte, 4096)
	for strings.Count(text.String(), "\ndata: {\"type\":\"event\"") < 2 {
		n, err := res.Body.Read(buf)
		if err != nil {
			t.Fatalf("read: %v (got %q)", err, text.String())
		}
		text.Write(buf[:n])
	}
	s := text.String()
	if !strings.Contains(s, "event: welcome") || strings.Contains(s, `"params":1`) ||
		strings.Index(s, `"params":2`) > strings.Index(s, `"params":3`) || !strings.Contains(s, "id: ") {
		t.Fatalf("sse stream:\n%s", s)
	}
}

func TestRoutingOfflinePushAndAckTimeout(t *testing.T) {
	e := newLiveEnv(t, hub.Options{}, live.Options{})
	online := e.dial("jack", "")
	r := e.publish(live.Event{Users: []string{"jack", "kate"}, Push: &push.Request{}})
	if fmt.Sprint(r.Online) != "[jack]" || fmt.Sprint(e.pusher.reqs[0].Users) != "[kate]" {
		t.Fatalf("routing: %+v %+v", r, e.pusher.reqs)
	}
	online.expect("event")
	// ack_timeout: the online user who acks gets no push; the one who does not, does.
	other := e.dial("liam", "")
	r = e.publish(live.Event{Users: []string{"jack", "liam", "kate"}, Push: &push.Request{}, AckTimeout: 300 * time.Millisecond})
	online.expect("event")
	other.expect("event")
	online.c.Write(context.Background(), websocket.MessageText, []byte(`{"op":"ack","id":"`+r.ID+`"}`))
	deadline := time.Now().Add(5 * time.Second)
	for {
		u := e.pusher.users()
		if len(u) >= 3 {
			if fmt.Sprint(u[1:]) != "[kate liam]" {
				t.Fatalf("pushes: %v", u)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no push after the ack timeout: %v", u)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func counter(mid string) int64 {
	var n int64
	fmt.Sscan(strings.TrimLeft(mid[10:], "0"), &n)
	return n
}

func FuzzParseClientFrame(f *testing.F) {
	for _, s := range []string{`{"op":"ping"}`, `{"op":"ack","id":"17958476680000000000000001"}`, `{"op":"watch","tags":["a"]}`, `{"op":"ack","id":1}`, `[]`, ``} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, id, tags, err := ParseClientFrame(b)
		if err != nil {
			return
		}
		switch op {
		case "ping":
		case "ack":
			if !hub.ValidMID(id) {
				t.Fatalf("ack with bad id %q", id)
			}
		case "watch":
			if len(tags) == 0 || len(tags) > 100 {
				t.Fatalf("watch with %d tags", len(tags))
			}
		default:
			t.Fatalf("unknown op %q accepted", op)
		}
	})
}
