package bitrix

import (
	"bytes"
	"encoding/json"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
)

// frameRE is the client's own extraction regexp (codec/legacy.js): '.' does
// not match line terminators.
var frameRE = regexp.MustCompile(`#!NGINXNMS!#([^\n\r\x{2028}\x{2029}]*?)#!NGINXNME!#`)

func publishedEvent(t testing.TB, body string) *hub.Event {
	t.Helper()
	ev, err := newEvent([]byte(body), &meta{sender: SenderBackend}, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = "17000000000000000000000123"
	ev.Created = time.Date(2024, 3, 5, 10, 0, 0, 456e6, time.UTC)
	return ev
}

func TestTextFrame(t *testing.T) {
	t.Parallel()
	ev := publishedEvent(t, "{\n \"module_id\": \"im\", \"command\": \"x\",\n \"params\": {\"s\": \"a\u2028b\u2029c\"}}")
	b, err := Text.Encode(ev, "bx:x")
	if err != nil {
		t.Fatal(err)
	}
	want := `#!NGINXNMS!#{"id":123,"mid":"17000000000000000000000123","channel":"-","tag":"456","time":"Tue, 05 Mar 2024 10:00:00 GMT","text":{"module_id":"im","command":"x","params":{"s":"a\u2028b\u2029c"}}}#!NGINXNME!#`
	if string(b) != want {
		t.Fatalf("frame\n got %s\nwant %s", b, want)
	}
	joined := Text.Join(nil, [][]byte{b, b})
	if m := frameRE.FindAllSubmatch(joined, -1); len(m) != 2 {
		t.Fatalf("the client must find 2 frames, found %d", len(m))
	}
}

func TestEventFieldsForNativeClients(t *testing.T) {
	t.Parallel()
	ev := publishedEvent(t, `{"module_id":"im","command":"message","params":{"a":1},"extra":{"revision_web":19}}`)
	if ev.ModuleID != "im" || ev.Command != "message" || string(ev.Params) != `{"a":1}` || string(ev.Extra) != `{"revision_web":19}` {
		t.Fatalf("event = %+v", ev)
	}
	for _, body := range []string{`[1]`, `"s"`, `{`, ``} {
		if _, err := newEvent([]byte(body), &meta{}, 0); err == nil || codeOf(err) != CodeWrongData {
			t.Errorf("%q: err = %v, want 4013", body, err)
		}
	}
	// A native event (no Bitrix meta) still renders as a Bitrix body.
	native := &hub.Event{ID: "17000000000000000000000001", ModuleID: "m", Command: "c", Params: json.RawMessage(`{"x":1}`)}
	b, _ := Text.Encode(native, "user:1")
	if !bytes.Contains(b, []byte(`"text":{"module_id":"m","command":"c","params":{"x":1},"extra":{}}`)) {
		t.Fatalf("native frame %s", b)
	}
}

func TestRPCFormat(t *testing.T) {
	t.Parallel()
	s := newTestSigner(t, testKey, "sha1")
	f := rpcFormat{s: s}
	ev, err := newEvent([]byte(`{"module_id":"im","command":"c","params":{}}`), &meta{
		sender:     SenderBackend,
		userParams: map[string]json.RawMessage{"42": json.RawMessage(`{"own":1}`)},
		dictionary: json.RawMessage(`{"d":2}`),
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	ev.ID = "17000000000000000000000009"
	priv := privPrefix + s.DeriveID(kindPrivate, 42)
	if f.Variant("user:42") != "u42" || f.Variant(priv) != "u42" || f.Variant("bx:"+strings.Repeat("a", 32)) != "" {
		t.Fatal("variants must follow the user")
	}
	for _, ch := range []string{"user:42", priv} {
		b, _ := f.Encode(ev, ch)
		var msg struct {
			JSONRPC, Method string
			Params          struct {
				Mid        string
				Body       map[string]any
				Sender     struct{ Type int }
				UserParams map[string]int `json:"user_params"`
				Dictionary map[string]int
			}
		}
		if err := json.Unmarshal(b, &msg); err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if msg.Method != "incoming.message" || msg.Params.Mid != ev.ID || msg.Params.Sender.Type != 2 ||
			msg.Params.UserParams["own"] != 1 || msg.Params.Dictionary["d"] != 2 {
			t.Fatalf("%s: %+v", ch, msg)
		}
	}
	other, _ := f.Encode(ev, "user:7")
	if bytes.Contains(other, []byte("user_params")) {
		t.Fatalf("user 7 must not see user 42's params: %s", other)
	}
	var arr []json.RawMessage
	if err := json.Unmarshal(f.Join(nil, [][]byte{other, other}), &arr); err != nil || len(arr) != 2 {
		t.Fatalf("join must be a JSON array: %v", err)
	}
}

func FuzzTextFrame(f *testing.F) {
	f.Add(`{"module_id":"im","params":{"s":"\u2028"}}`)
	f.Add("{\"a\":\"\u2029\",\n\"b\":[1,2]}")
	f.Add(`{"x":"#!NGINXNME!#"}`)
	f.Fuzz(func(t *testing.T, body string) {
		ev, err := newEvent([]byte(body), &meta{}, 0)
		if err != nil {
			return
		}
		ev.ID = "17000000000000000000000001"
		b, _ := Text.Encode(ev, "")
		m := frameRE.FindAllSubmatch(Text.Join(nil, [][]byte{b, b}), -1)
		if len(m) != 2 {
			t.Fatalf("client finds %d frames in %q", len(m), b)
		}
		var frame struct {
			Mid  string
			Text json.RawMessage
		}
		if err := json.Unmarshal(m[0][1], &frame); err != nil {
			// A body holding the end marker is cut short, as with the
			// reference servers; anything else must parse.
			if strings.Contains(body, "#!NGINXNME!#") {
				return
			}
			t.Fatalf("frame does not parse: %v: %s", err, m[0][1])
		}
		var want, got any
		_ = json.Unmarshal([]byte(body), &want)
		_ = json.Unmarshal(frame.Text, &got)
		wb, _ := json.Marshal(want)
		gb, _ := json.Marshal(got)
		if !bytes.Equal(wb, gb) || frame.Mid != ev.ID {
			t.Fatalf("text %s != body %s", gb, wb)
		}
	})
}
