package bitrix

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
)

func TestLongPoll304ReplayAndExpiry(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollHold: 50 * time.Millisecond})
	list, priv := e.userChannels(t, 42, 3)
	sub := e.sub.URL + "/bitrix/sub/?CHANNEL_ID=" + q(list)

	res, body := e.do(t, http.MethodGet, sub, nil)
	if res.StatusCode != http.StatusNotModified || res.Header.Get("Expires") != pollExpires ||
		res.Header.Get("Access-Control-Allow-Origin") != "*" || res.Header.Get("Access-Control-Expose-Headers") != "Last-Message-Id" {
		t.Fatalf("timeout answer: %d %v %q", res.StatusCode, res.Header, body)
	}
	last := res.Header.Get("Last-Message-Id")
	if len(last) != 26 {
		t.Fatalf("Last-Message-Id %q", last)
	}

	e.publishText(t, []string{priv}, `{"module_id":"im","command":"one","params":{}}`, "60")
	e.publishText(t, []string{priv}, `{"module_id":"im","command":"two","params":{}}`, "") // v3: stored for MessageTTL
	// Protobuf expiry 0 is live only: nobody is polling, so it is lost.
	e.do(t, http.MethodPost, e.pub.URL+"/bitrix/pub/?binaryMode=true", requestBatch(t, rawID(priv), `{"module_id":"im","command":"live","params":{}}`, 0))
	res, body = e.do(t, http.MethodGet, sub+"&mid="+last, nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("replay: %d %q", res.StatusCode, body)
	}
	got := frameBodies(t, body)
	if len(got) != 2 || got[0]["command"] != "one" || got[1]["command"] != "two" {
		t.Fatalf("replay = %v", got)
	}

	// Held poll (user 43: channels without history, so the hub counting
	// them means the poll is registered): answered with what is published.
	e.s.o.PollHold = 5 * time.Second
	list43, priv43 := e.userChannels(t, 43, 3)
	before := e.hub.Stats().Channels
	done := make(chan []byte)
	go func() {
		_, b := e.do(t, http.MethodGet, e.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(list43), nil)
		done <- b
	}()
	waitUntil(t, "poll held", func() bool { return e.hub.Stats().Channels >= before+1 })
	e.publishText(t, []string{priv43}, `{"module_id":"im","command":"held","params":{}}`, "60")
	if got := frameBodies(t, <-done); len(got) != 1 || got[0]["command"] != "held" {
		t.Fatalf("held poll got %v", got)
	}
}

func TestWrongChannel(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	list, _ := e.userChannels(t, 1, 4)
	bad := list[:len(list)-1] + "0"
	if strings.HasSuffix(list, "0") {
		bad = list[:len(list)-1] + "1"
	}
	res, body := e.do(t, http.MethodGet, e.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(bad), nil)
	if res.StatusCode != http.StatusBadRequest || string(body) != "4010: Wrong Channel Id." {
		t.Fatalf("long poll: %d %q", res.StatusCode, body)
	}
	// WebSocket: the upgrade succeeds, then the close code is 4010.
	c := e.dial(t, "binaryMode=true&CHANNEL_ID="+q(bad))
	_, _, err := c.Read(context.Background())
	if code := websocket.CloseStatus(err); code != websocket.StatusCode(CodeWrongChannel) {
		t.Fatalf("close = %v (%v)", code, err)
	}
}

func TestWebSocketTextBatchesAndReplays(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{BatchWindow: 300 * time.Millisecond})
	list, priv := e.userChannels(t, 5, 3)
	c := e.dial(t, "CHANNEL_ID="+q(list))
	waitUntil(t, "subscribed", func() bool { return e.hub.Connections(privPrefix+priv) == 1 })

	e.publishText(t, []string{priv}, `{"module_id":"m","command":"a","params":{}}`, "60")
	_, first := read(t, c)
	if got := frameBodies(t, first); len(got) != 1 {
		t.Fatalf("first frame %s", first)
	}
	// Within the window after a frame, events are joined into one frame.
	e.publishText(t, []string{priv}, `{"module_id":"m","command":"b","params":{}}`, "60")
	e.publishText(t, []string{priv}, `{"module_id":"m","command":"c","params":{}}`, "60")
	typ, second := read(t, c)
	got := frameBodies(t, second)
	if typ != websocket.MessageText || len(got) != 2 || got[0]["command"] != "b" || got[1]["command"] != "c" {
		t.Fatalf("second frame (%v): %s", typ, second)
	}
	var firstMid struct{ Mid string }
	_ = json.Unmarshal(frameRE.FindSubmatch(first)[1], &firstMid)
	c.Close(websocket.StatusNormalClosure, "")

	// Reconnect with the first mid: b and c are replayed first, once.
	c2 := e.dial(t, "CHANNEL_ID="+q(list)+"&mid="+firstMid.Mid)
	_, replay := read(t, c2)
	if got := frameBodies(t, replay); len(got) != 2 || got[0]["command"] != "b" {
		t.Fatalf("replay frame %s", replay)
	}
}

func TestWebSocketBinaryAndClientPublish(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{BatchWindow: time.Millisecond})
	fd := schema(t)
	list, priv := e.userChannels(t, 8, 4)
	c := e.dial(t, "binaryMode=true&CHANNEL_ID="+q(list))
	waitUntil(t, "subscribed", func() bool { return e.hub.Connections(privPrefix+priv) == 1 })

	res, body := e.do(t, http.MethodPost, e.pub.URL+"/bitrix/pub/?binaryMode=true", requestBatch(t, rawID(priv), `{"module_id":"m","command":"bin","params":{}}`, 60))
	if res.StatusCode != http.StatusOK || len(body) != 0 {
		t.Fatalf("publish: %d %q", res.StatusCode, body)
	}
	typ, frame := read(t, c)
	batch := newMsg(fd, "ResponseBatch")
	if err := proto.Unmarshal(frame, batch); typ != websocket.MessageBinary || err != nil {
		t.Fatalf("frame %v: %v", typ, err)
	}

	// The client publishes to its own public channel through the socket.
	base := mustURL(e.sub.URL)
	cfg, _ := e.s.BuildConfig(8, 4, "", base)
	pc := cfg["publicChannels"].(map[string]PublicChannel)["8"]
	good := clientBatch(rawID(pc.PublicID), false, mustHex(pc.Signature))
	if err := c.Write(context.Background(), websocket.MessageBinary, good); err != nil {
		t.Fatal(err)
	}
	_, frame = read(t, c)
	if !strings.Contains(string(frame), "fromclient") || !bytesContains(frame, []byte{0x08, byte(SenderClient)}) {
		t.Fatalf("client message frame %x", frame)
	}

	// Untrusted over HTTP: the 40xx codes.
	for _, tc := range []struct {
		name  string
		query string
		body  []byte
		want  string
	}{
		{"private receiver", "CHANNEL_ID=" + q(list), clientBatch(rawID(pc.PublicID), true, mustHex(pc.Signature)), "4020: "},
		{"bad signature", "CHANNEL_ID=" + q(list), clientBatch(rawID(pc.PublicID), false, make([]byte, 20)), "4021: "},
		{"no public id", "CHANNEL_ID=" + q(e.s.signer.SignChannel(strings.Repeat("e", 32))), good, "4012: "},
		{"server stats not allowed", "CHANNEL_ID=" + q(list), protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), protowire.AppendBytes(protowire.AppendTag(nil, 3, protowire.BytesType), nil)), "4014: "},
	} {
		res, body := e.do(t, http.MethodPost, e.sub.URL+"/bitrix/pubweb/?"+tc.query, tc.body)
		if res.StatusCode != http.StatusBadRequest || !strings.HasPrefix(string(body), tc.want) {
			t.Errorf("%s: %d %q", tc.name, res.StatusCode, body)
		}
	}
}

func TestMaxConnsPerChannelClosesOldest(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{MaxConnsPerChannel: 1})
	list, _ := e.userChannels(t, 9, 4)
	old := e.dial(t, "binaryMode=true&CHANNEL_ID="+q(list))
	e.dial(t, "binaryMode=true&CHANNEL_ID="+q(list))
	_, _, err := old.Read(context.Background())
	if code := websocket.CloseStatus(err); code != websocket.StatusCode(CodeTooManyConns) {
		t.Fatalf("oldest closed with %v (%v)", code, err)
	}
}

func TestJSONRPCPublishDedupAndUserParams(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	base := mustURL(e.sub.URL)
	cfg, err := e.s.BuildConfig(42, 5, "host", base)
	if err != nil {
		t.Fatal(err)
	}
	shared := strings.Split(cfg["channels"].(map[string]any)["shared"].(ConfigChannel).ID, ".")[0]
	c := e.dial(t, "jsonRpc=true&token="+cfg["jwt"].(string))
	if _, b := read(t, c); string(b) != "ping" {
		t.Fatalf("first frame %q, want ping", b)
	}
	waitUntil(t, "subscribed", func() bool { return e.hub.Connections("user:42") == 1 })

	body := []byte(`[{"jsonrpc":"2.0","method":"publish","params":{"userList":[42],"channelList":["` + shared + `"],` +
		`"body":{"module_id":"im","command":"msg","params":{"a":1}},"user_params":{"42":{"mine":true}},"expiry":60}}]`)
	sig := hmac.New(sha1.New, []byte(testKey))
	sig.Write(body)
	res, reply := e.do(t, http.MethodPost, e.pub.URL+"/bitrix/api/?signature=0000", body, "X-HostId", "host")
	if res.StatusCode != http.StatusUnauthorized {
		t.Fatalf("bad signature: %d %s", res.StatusCode, reply)
	}
	res, reply = e.do(t, http.MethodPost, e.pub.URL+"/bitrix/api/?hostId=host&signature="+hex.EncodeToString(sig.Sum(nil)), body)
	if res.StatusCode != http.StatusOK || !json.Valid(reply) || len(reply) == 0 {
		t.Fatalf("publish: %d %s", res.StatusCode, reply)
	}
	_, frame := read(t, c)
	var msg struct {
		Method string
		Params struct {
			Body       struct{ Command string }
			UserParams map[string]bool `json:"user_params"`
		}
	}
	if err := json.Unmarshal(frame, &msg); err != nil || msg.Method != "incoming.message" || !msg.Params.UserParams["mine"] {
		t.Fatalf("frame %s: %v", frame, err)
	}
	// Exactly once although the user is reached by both lists: the next
	// frame is the client's own ping reply.
	_ = c.Write(context.Background(), websocket.MessageText, []byte(`{"jsonrpc":"2.0","method":"ping","params":{},"id":7}`))
	if _, b := read(t, c); !strings.Contains(string(b), `"id":7`) {
		t.Fatalf("after the message came %s", b)
	}
	r := e.s.usersLastSeenJSON(t, 42, 3)
	if r != `{"42":0}` {
		t.Fatalf("getUsersLastSeen = %s", r)
	}
}

func (s *Server) usersLastSeenJSON(t *testing.T, users ...int) string {
	t.Helper()
	p, _ := json.Marshal(map[string]any{"userList": users})
	res, rerr := s.usersLastSeen(p)
	if rerr != nil {
		t.Fatal(rerr)
	}
	b, _ := json.Marshal(res)
	return string(b)
}

func TestAnnounceRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{PollHold: 10 * time.Second})
	list, priv := e.userChannels(t, 3, 4)
	c := e.dial(t, "binaryMode=true&CHANNEL_ID="+q(list))
	waitUntil(t, "subscribed", func() bool { return e.hub.Connections(privPrefix+priv) == 1 })
	done := make(chan []byte)
	go func() {
		_, b := e.do(t, http.MethodGet, e.sub.URL+"/bitrix/sub/?CHANNEL_ID="+q(list), nil)
		done <- b
	}()
	waitUntil(t, "poll held", func() bool {
		e.s.mu.Lock()
		defer e.s.mu.Unlock()
		return len(e.s.sessions) == 2
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	e.s.AnnounceRestart(ctx)
	_, frame := read(t, c)
	if !strings.Contains(string(frame), `"command":"server_restart"`) {
		t.Fatalf("ws frame %q", frame)
	}
	if got := frameBodies(t, <-done); len(got) != 1 || got[0]["command"] != "server_restart" {
		t.Fatalf("poll got %v", got)
	}
	e.s.AnnounceRestart(ctx) // idempotent

	// A client that connects after the announcement (it raced the
	// shutdown) is told the same before the close.
	late := e.dial(t, "binaryMode=true&CHANNEL_ID="+q(list))
	if _, frame := read(t, late); !strings.Contains(string(frame), `"command":"server_restart"`) {
		t.Fatalf("late client's frame %q", frame)
	}
	if _, _, err := late.Read(ctx); websocket.CloseStatus(err) != websocket.StatusServiceRestart {
		t.Fatalf("late client closed with %v, want 1012", err)
	}
}

func TestConfigEndpoint(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Options{})
	res, body := e.do(t, http.MethodGet, e.pub.URL+"/api/v1/bitrix/config?user=42&version=5&host_id=h", nil)
	if res.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", res.StatusCode, body)
	}
	var out struct {
		Result struct {
			Server struct {
				Version          int
				WebsocketEnabled bool   `json:"websocket_enabled"`
				PublishEnabled   bool   `json:"publish_enabled"`
				LongPolling      string `json:"long_pooling_secure"`
			}
			API struct {
				RevisionWeb int `json:"revision_web"`
			}
			JWT        string
			Exp        int64
			ServerTime string
			Channels   map[string]ConfigChannel
		}
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	r := out.Result
	if r.Server.Version != 5 || !r.Server.WebsocketEnabled || !r.Server.PublishEnabled || r.API.RevisionWeb != 19 ||
		r.JWT == "" || r.Exp == 0 || r.ServerTime == "" || r.Server.LongPolling != e.sub.URL+"/bitrix/sub/" {
		t.Fatalf("config %s", body)
	}
	cl, err := e.s.parseJWT(r.JWT)
	if err != nil || cl.Subject != "42" || cl.Issuer != "h" || len(cl.channels()) != 1 {
		t.Fatalf("jwt %+v %v", cl, err)
	}
	if _, err := e.s.signer.ParseChannelList(r.Channels["shared"].ID, 1); err != nil {
		t.Fatalf("shared channel must verify: %v", err)
	}
	if _, err := e.s.parseJWT(r.JWT + "x"); codeOf(err) != CodeWrongChannel {
		t.Fatalf("tampered jwt: %v", err)
	}
	if res, _ := e.do(t, http.MethodGet, e.pub.URL+"/api/v1/bitrix/config?user=abc", nil); res.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad user: %d", res.StatusCode)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for field, o := range map[string]Options{
		"SignatureAlgo": {SignatureAlgo: "md5"},
		"PollHold":      {PollHold: -1},
		"ServerVersion": {ServerVersion: 2},
		"PublicURL":     {PublicURL: "ftp://x"},
	} {
		err := o.Validate()
		if !errors.Is(err, ErrInvalidOptions) || !strings.Contains(err.Error(), field) {
			t.Errorf("%s: %v", field, err)
		}
	}
	if err := (Options{}).Validate(); err != nil {
		t.Fatal(err)
	}
}
