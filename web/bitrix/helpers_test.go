package bitrix

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/labstack/echo/v4"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/pushpull/pushpull/gateway/hub"
)

// testEnv is a Server on a real hub behind two real HTTP listeners.
type testEnv struct {
	s        *Server
	hub      *hub.Hub
	pub, sub *httptest.Server
}

func newEnv(t *testing.T, o Options) *testEnv {
	t.Helper()
	h, err := hub.New(hub.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(h.Close)
	return serveEnv(t, Deps{Hub: h}, o)
}

// serveEnv registers a Server with deps behind two test listeners.
func serveEnv(t *testing.T, deps Deps, o Options) *testEnv {
	t.Helper()
	h := deps.Hub
	if o.SignatureKey == "" {
		o.SignatureKey = testKey
	}
	pub, sub := echo.New(), echo.New()
	subSrv := httptest.NewServer(sub)
	o.PublicURL = subSrv.URL
	s, err := Register(pub, sub, deps, o)
	if err != nil {
		t.Fatal(err)
	}
	pubSrv := httptest.NewServer(pub)
	t.Cleanup(func() {
		h.CloseAll(1001, "test over")
		pubSrv.Close()
		subSrv.Close()
	})
	return &testEnv{s: s, hub: h, pub: pubSrv, sub: subSrv}
}

// userChannels returns the signed CHANNEL_ID list of user u for version v
// as the config endpoint gives it, and the raw private id.
func (e *testEnv) userChannels(t *testing.T, u uint64, v int) (list, priv string) {
	t.Helper()
	base, _ := url.Parse(e.sub.URL)
	cfg, err := e.s.BuildConfig(u, v, "host", base)
	if err != nil {
		t.Fatal(err)
	}
	chans := cfg["channels"].(map[string]any)
	p := chans["private"].(ConfigChannel).ID
	return p + "/" + chans["shared"].(ConfigChannel).ID, strings.Split(strings.Split(p, ".")[0], ":")[0]
}

func (e *testEnv) do(t *testing.T, method, u string, body []byte, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(string(body)))
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// publishText publishes like CPullChannel::Send and waits until the hub has
// the message (the answer comes before the fan-out).
func (e *testEnv) publishText(t *testing.T, ids []string, body string, expiry string) {
	t.Helper()
	before := e.hub.Stats().HistoryEvents
	var hdr []string
	if expiry != "" {
		hdr = []string{"Message-Expiry", expiry}
	}
	res, b := e.do(t, http.MethodPost, e.pub.URL+"/bitrix/pub/?CHANNEL_ID="+strings.Join(ids, "/"), []byte(body), hdr...)
	if res.StatusCode != http.StatusOK || len(b) != 0 {
		t.Fatalf("publish: %d %q", res.StatusCode, b)
	}
	if expiry != "0" {
		waitUntil(t, "stored", func() bool { return e.hub.Stats().HistoryEvents > before })
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *testEnv) dial(t *testing.T, query string) *websocket.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(e.sub.URL, "http")+"/bitrix/subws/?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	c.SetReadLimit(4 << 20)
	t.Cleanup(func() { c.CloseNow() })
	return c
}

func read(t *testing.T, c *websocket.Conn) (websocket.MessageType, []byte) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	typ, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return typ, b
}

// frameBodies extracts the "text" of each legacy frame.
func frameBodies(t *testing.T, b []byte) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, m := range frameRE.FindAllSubmatch(b, -1) {
		var f struct{ Text map[string]any }
		if err := json.Unmarshal(m[1], &f); err != nil {
			t.Fatalf("frame %s: %v", m[1], err)
		}
		out = append(out, f.Text)
	}
	return out
}

func q(list string) string { return url.QueryEscape(list) }

func rawID(s string) []byte { b, _ := hex.DecodeString(s); return b }

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func bytesContains(b, sub []byte) bool { return strings.Contains(string(b), string(sub)) }

// requestBatch is a trusted RequestBatch as PHP's ProtobufTransport builds
// it: one message to one private receiver.
func requestBatch(t *testing.T, id []byte, body string, expiry uint32) []byte {
	t.Helper()
	var recv []byte
	recv = protowire.AppendTag(recv, 1, protowire.BytesType)
	recv = protowire.AppendBytes(recv, id)
	recv = protowire.AppendTag(recv, 2, protowire.VarintType)
	recv = protowire.AppendVarint(recv, 1)
	return wrapMessage(recv, body, expiry)
}

// clientBatch is what the JS client sends to publish to a public channel.
func clientBatch(id []byte, private bool, sig []byte) []byte {
	var recv []byte
	recv = protowire.AppendTag(recv, 1, protowire.BytesType)
	recv = protowire.AppendBytes(recv, id)
	if private {
		recv = protowire.AppendTag(recv, 2, protowire.VarintType)
		recv = protowire.AppendVarint(recv, 1)
	}
	recv = protowire.AppendTag(recv, 3, protowire.BytesType)
	recv = protowire.AppendBytes(recv, sig)
	return wrapMessage(recv, `{"module_id":"test","command":"fromclient","params":{}}`, 0)
}

func wrapMessage(recv []byte, body string, expiry uint32) []byte {
	var msg []byte
	msg = protowire.AppendTag(msg, 1, protowire.BytesType)
	msg = protowire.AppendBytes(msg, recv)
	msg = protowire.AppendTag(msg, 3, protowire.BytesType)
	msg = protowire.AppendString(msg, body)
	if expiry > 0 {
		msg = protowire.AppendTag(msg, 4, protowire.VarintType)
		msg = protowire.AppendVarint(msg, uint64(expiry))
	}
	var msgs, req, batch []byte
	msgs = protowire.AppendTag(msgs, 1, protowire.BytesType)
	msgs = protowire.AppendBytes(msgs, msg)
	req = protowire.AppendTag(req, 1, protowire.BytesType)
	req = protowire.AppendBytes(req, msgs)
	batch = protowire.AppendTag(batch, 1, protowire.BytesType)
	return protowire.AppendBytes(batch, req)
}
