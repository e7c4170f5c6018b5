package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats-server/v2/server"

	"github.com/pushpull/pushpull/gateway/cluster/natstest"
	"github.com/pushpull/pushpull/providers/fake"
)

// The cluster suites run three gateway processes (this test binary as
// main, like the reliability suites) on one embedded NATS server with
// JetStream, all configured against one fake FCM.

// startNATS runs a nats-server with JetStream on a temp dir in the test
// process.
func startNATS(t *testing.T) *server.Server { return natstest.Server(t, "") }

// clusterFixture is the shared parts of a cluster under test.
type clusterFixture struct {
	natsURL string
	fcm     *fake.FCM
	saFile  string
	extra   string // more TOML for every node
}

func newClusterFixture(t *testing.T, natsURL string) *clusterFixture {
	t.Helper()
	f, err := fake.NewFCM(fake.FCMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	sa, err := f.ServiceAccountJSON("rel-project")
	if err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(t.TempDir(), "sa.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	return &clusterFixture{natsURL: natsURL, fcm: f, saFile: saFile}
}

// node writes the config of one node and starts it.
func (cf *clusterFixture) node(t *testing.T, name string, leaseTimeout time.Duration) *relProc {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pushpull.toml")
	toml := relTOML(filepath.Join(dir, "data"), cf.fcm.URL()+"/v1", cf.saFile, leaseTimeout) + fmt.Sprintf(`
[cluster]
engine = "nats"
nats_url = %q
node_id = %q
catch_up = "5s"
`, cf.natsURL, name) + cf.extra
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &relEnv{dir: dir, cfg: cfg, fcm: cf.fcm, toml: toml}
	return e.start(t, nil)
}

// wsClient is a WebSocket client of one node that collects event ids.
type wsClient struct {
	conn    *websocket.Conn
	welcome struct {
		LastID  string `json:"last_id"`
		Resumed bool   `json:"resumed"`
	}
	events chan wsEvent
}

type wsEvent struct {
	ID      string          `json:"id"`
	Command string          `json:"command"`
	Params  json.RawMessage `json:"params"`
}

func dialNode(t *testing.T, p *relProc, user, since string) *wsClient {
	t.Helper()
	u := "ws://" + p.client + "/sub/ws?token=" + clientToken(t, user)
	if since != "" {
		u += "&since=" + since
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, nil)
	if err != nil {
		t.Fatalf("dial %s: %v", p.client, err)
	}
	c := &wsClient{conn: conn, events: make(chan wsEvent, 1024)}
	_, msg, err := conn.Read(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(bytes.SplitN(msg, []byte("\n"), 2)[0], &c.welcome); err != nil {
		t.Fatalf("welcome %q: %v", msg, err)
	}
	first := bytes.SplitN(msg, []byte("\n"), 2)
	go func() {
		defer close(c.events)
		if len(first) == 2 {
			c.parse(first[1])
		}
		for {
			_, msg, err := conn.Read(context.Background())
			if err != nil {
				return
			}
			c.parse(msg)
		}
	}()
	t.Cleanup(func() { _ = conn.CloseNow() })
	return c
}

func (c *wsClient) parse(frame []byte) {
	for _, line := range bytes.Split(frame, []byte("\n")) {
		if !bytes.HasPrefix(line, []byte(`{"type":"event"`)) {
			continue
		}
		var e wsEvent
		if json.Unmarshal(line, &e) == nil {
			c.events <- e
		}
	}
}

// next returns the next n events, failing after a deadline.
func (c *wsClient) next(t *testing.T, n int) []wsEvent {
	t.Helper()
	var out []wsEvent
	deadline := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case e, ok := <-c.events:
			if !ok {
				t.Fatalf("connection ended after %d of %d events", len(out), n)
			}
			out = append(out, e)
		case <-deadline:
			t.Fatalf("got %d of %d events: %+v", len(out), n, out)
		}
	}
	return out
}

// publish sends one event to user through node p and returns its mid.
func publish(t *testing.T, p *relProc, user, command string) string {
	t.Helper()
	body := fmt.Sprintf(`{"events":[{"users":[%q],"module_id":"test","command":%q,"params":{"via":%q}}]}`, user, command, p.api)
	status, raw, err := newRelAPI(p.api).do(context.Background(), http.MethodPost, "/api/v1/events", []byte(body))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("publish on %s: %d %s %v", p.api, status, raw, err)
	}
	var res struct {
		Results []struct {
			ID string `json:"id"`
		} `json:"results"`
	}
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Results) != 1 || res.Results[0].ID == "" {
		t.Fatalf("publish answer %s: %v", raw, err)
	}
	return res.Results[0].ID
}

// TestClusterPublishAndResume: the backend publishes to node A, a client
// on node C receives; the client moves to node B with its last id and gets
// what it missed, once each, in order.
func TestClusterPublishAndResume(t *testing.T) {
	ns := startNATS(t)
	cf := newClusterFixture(t, ns.ClientURL())
	a, b, c := cf.node(t, "a", 10*time.Second), cf.node(t, "b", 10*time.Second), cf.node(t, "c", 10*time.Second)

	onC := dialNode(t, c, "42", "")
	mids := []string{publish(t, a, "42", "one"), publish(t, a, "42", "two"), publish(t, b, "42", "three")}
	got := onC.next(t, 3)
	for i, e := range got {
		if e.ID != mids[i] {
			t.Fatalf("on C: event %d is %s, want %s (published on A/B)", i, e.ID, mids[i])
		}
	}
	_ = onC.conn.Close(websocket.StatusNormalClosure, "")

	// Published while the client is away, through different nodes.
	missed := []string{publish(t, c, "42", "four"), publish(t, a, "42", "five")}
	onB := dialNode(t, b, "42", mids[2])
	if !onB.welcome.Resumed {
		t.Fatalf("resume on B refused: %+v", onB.welcome)
	}
	live := publish(t, a, "42", "six")
	got = onB.next(t, 3)
	want := append(missed, live)
	for i := range want {
		if got[i].ID != want[i] {
			t.Fatalf("on B: %+v, want %v (no gap, no duplicate, in order)", got, want)
		}
	}
	select {
	case e := <-onB.events:
		t.Fatalf("extra event on B: %+v", e)
	case <-time.After(300 * time.Millisecond):
	}
}

// TestClusterDevicePushOnce: a device registered through node B is pushed,
// through a request to node A, exactly once by whichever node leases the
// job; node C reports it delivered.
func TestClusterDevicePushOnce(t *testing.T) {
	ns := startNATS(t)
	cf := newClusterFixture(t, ns.ClientURL())
	a, b, c := cf.node(t, "a", 10*time.Second), cf.node(t, "b", 10*time.Second), cf.node(t, "c", 10*time.Second)
	ctx := context.Background()
	const users = 30
	for i := range users {
		body := fmt.Sprintf(`{"user":"u%d","device_id":"d%d","platform":"fcm","token":"tok-%03d","app_id":%q}`, i, i, i, relFCMApp)
		if status, raw, err := newRelAPI(b.api).do(ctx, http.MethodPost, "/api/v1/devices", []byte(body)); err != nil || status/100 != 2 {
			t.Fatalf("register on B: %d %s %v", status, raw, err)
		}
	}
	var names []string
	for i := range users {
		names = append(names, fmt.Sprintf("u%d", i))
	}
	body, _ := json.Marshal(map[string]any{"notifications": []map[string]any{{"users": names, "app_id": relFCMApp, "title": "t", "body": "cluster"}}})
	status, raw, err := newRelAPI(a.api).do(ctx, http.MethodPost, "/api/v1/push", body)
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("push on A: %d %s %v", status, raw, err)
	}
	var res pushResult
	if err := json.Unmarshal(raw, &res); err != nil || len(res.Results) != 1 || res.Results[0].Jobs != users {
		t.Fatalf("push answer %s", raw)
	}
	waitFor(t, 30*time.Second, "every device pushed", func() bool { return len(deliveredFCM(cf.fcm)) == users })
	// Let any duplicate show up before counting.
	time.Sleep(500 * time.Millisecond)
	for tok, n := range deliveredFCM(cf.fcm) {
		if n != 1 {
			t.Errorf("token %s pushed %d times", tok, n)
		}
	}
	waitFor(t, 10*time.Second, "status delivered on C", func() bool {
		st, raw, err := newRelAPI(c.api).do(ctx, http.MethodGet, "/api/v1/push/"+res.Results[0].ID, nil)
		return err == nil && st == http.StatusOK && bytes.Contains(raw, []byte(fmt.Sprintf(`"delivered":%d`, users)))
	})
}

// TestClusterNodeKilledMidDispatch: node A leases jobs and dies (SIGKILL)
// while their sends hang; the other nodes send every one after the lease
// timeout.
func TestClusterNodeKilledMidDispatch(t *testing.T) {
	ns := startNATS(t)
	cf := newClusterFixture(t, ns.ClientURL())
	const lease = 3 * time.Second
	a := cf.node(t, "a", lease)
	cf.fcm.SetDefault(fake.FCMBehavior{Delay: time.Minute})
	var toks []string
	for i := range 20 {
		toks = append(toks, fmt.Sprintf("kill-%02d", i))
	}
	status, raw, err := newRelAPI(a.api).do(context.Background(), http.MethodPost, "/api/v1/push", pushBody(toks, 3600, 1))
	if err != nil || status != http.StatusAccepted {
		t.Fatalf("push: %d %s %v", status, raw, err)
	}
	waitFor(t, 15*time.Second, "A sending", func() bool { return cf.fcm.Held() > 0 })
	a.kill()
	cf.fcm.SetDefault(fake.FCMBehavior{})
	killed := time.Now()
	cf.node(t, "b", lease)
	cf.node(t, "c", lease)
	waitFor(t, 60*time.Second, "every job sent by the survivors", func() bool { return len(deliveredFCM(cf.fcm)) == len(toks) })
	figure(t, "cluster/kill lease=%v all_delivered_after_kill=%v", lease, time.Since(killed).Round(time.Millisecond))
	var missing []string
	got := deliveredFCM(cf.fcm)
	for _, tok := range toks {
		if got[tok] == 0 {
			missing = append(missing, tok)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Fatalf("never delivered: %s", strings.Join(missing, " "))
	}
}

// TestClusterPresenceAndWatches: presence and watch tags are shared. A
// user connected to C counts as online for a publish on A (no push);
// once they leave, the next publish on A pushes them. A watch added
// through B makes an event published on A to the tag reach the client on C.
func TestClusterPresenceAndWatches(t *testing.T) {
	ns := startNATS(t)
	cf := newClusterFixture(t, ns.ClientURL())
	a, b, c := cf.node(t, "a", 10*time.Second), cf.node(t, "b", 10*time.Second), cf.node(t, "c", 10*time.Second)
	ctx := context.Background()
	body := fmt.Sprintf(`{"user":"7","device_id":"d7","platform":"fcm","token":"tok-7","app_id":%q}`, relFCMApp)
	if st, raw, err := newRelAPI(b.api).do(ctx, http.MethodPost, "/api/v1/devices", []byte(body)); err != nil || st/100 != 2 {
		t.Fatalf("register: %d %s %v", st, raw, err)
	}
	type result struct {
		Results []struct {
			ID     string   `json:"id"`
			Online []string `json:"online"`
			Pushed []string `json:"pushed"`
		} `json:"results"`
	}
	send := func(p *relProc, payload string) result {
		t.Helper()
		st, raw, err := newRelAPI(p.api).do(ctx, http.MethodPost, "/api/v1/events", []byte(payload))
		if err != nil || st != http.StatusAccepted {
			t.Fatalf("events on %s: %d %s %v", p.api, st, raw, err)
		}
		var r result
		if err := json.Unmarshal(raw, &r); err != nil || len(r.Results) != 1 {
			t.Fatalf("answer %s", raw)
		}
		return r
	}
	withPush := fmt.Sprintf(`{"events":[{"users":["7"],"module_id":"im","command":"msg","params":{},"push":{"app_id":%q,"title":"t","body":"b"}}]}`, relFCMApp)

	onlineOnA := func() bool {
		st, raw, err := newRelAPI(a.api).do(ctx, http.MethodGet, "/api/v1/online?users=7", nil)
		return err == nil && st == http.StatusOK && bytes.Contains(raw, []byte(`"online":true`))
	}
	onC := dialNode(t, c, "7", "")
	waitFor(t, 10*time.Second, "A to see user 7 online on C", onlineOnA)
	r := send(a, withPush)
	if len(r.Results[0].Online) != 1 || len(r.Results[0].Pushed) != 0 {
		t.Fatalf("user online on C: %+v (want online, not pushed)", r.Results[0])
	}

	// A watch added through B, an event to the tag published on A.
	if st, raw, err := newRelAPI(b.api).do(ctx, http.MethodPost, "/api/v1/watch", []byte(`{"users":["7"],"tags":["IM_CHAT_17"]}`)); err != nil || st != http.StatusOK {
		t.Fatalf("watch on B: %d %s %v", st, raw, err)
	}
	var tagged string
	waitFor(t, 10*time.Second, "A to see the watch", func() bool {
		st, raw, err := newRelAPI(a.api).do(ctx, http.MethodGet, "/api/v1/watch/IM_CHAT_17", nil)
		return err == nil && st == http.StatusOK && bytes.Contains(raw, []byte(`"7"`))
	})
	tagged = send(a, `{"events":[{"tags":["IM_CHAT_17"],"module_id":"im","command":"tagged","params":{}}]}`).Results[0].ID
	for {
		e := onC.next(t, 1)[0]
		if e.Command == "tagged" {
			if e.ID != tagged {
				t.Fatalf("tagged event %+v, want id %s", e, tagged)
			}
			break
		}
	}

	// The user leaves C: A pushes the next event.
	_ = onC.conn.Close(websocket.StatusNormalClosure, "")
	waitFor(t, 10*time.Second, "A to see user 7 offline", func() bool { return !onlineOnA() })
	if n := deliveredFCM(cf.fcm)["tok-7"]; n != 0 {
		t.Fatalf("%d pushes while the user was online", n)
	}
	r = send(a, withPush)
	if len(r.Results[0].Online) != 0 || len(r.Results[0].Pushed) != 1 {
		t.Fatalf("offline user: %+v (want pushed)", r.Results[0])
	}
	waitFor(t, 20*time.Second, "the push delivered", func() bool { return deliveredFCM(cf.fcm)["tok-7"] == 1 })
}
