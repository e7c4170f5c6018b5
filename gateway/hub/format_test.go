package hub

import (
	"encoding/json"
	"testing"
)

func TestNativeEncode(t *testing.T) {
	t.Parallel()
	e := &Event{ID: "17327800000000000000000001", ModuleID: "im\"\n\x01", Command: "msg\u2028", Params: json.RawMessage(`{"a":[1,2]}`), Extra: json.RawMessage(`{"server_time":"x"}`)}
	b, err := Native.Encode(e, "user:42")
	if err != nil {
		t.Fatal(err)
	}
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		t.Fatalf("%s: %v", b, err)
	}
	if w.Type != "event" || w.ID != e.ID || w.Channel != "user" || w.ModuleID != e.ModuleID || w.Command != e.Command ||
		string(w.Params) != `{"a":[1,2]}` || string(w.Extra) != `{"server_time":"x"}` {
		t.Fatalf("%+v", w)
	}
	e2 := &Event{ID: e.ID, Command: "c"}
	b, _ = Native.Encode(e2, "shared")
	if string(b) != `{"type":"event","id":"17327800000000000000000001","channel":"shared","module_id":"","command":"c","params":null}` {
		t.Fatalf("%s", b)
	}
	if got := string(Native.Join(nil, [][]byte{[]byte("a"), []byte("b")})); got != "a\nb" {
		t.Fatalf("join %q", got)
	}
}

func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"b\\", "\x00\x1f\n", "\xff\xfe", "\u2028\u2029", "日本"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := appendJSONString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q -> %s: %v", s, b, err)
		}
		want, _ := json.Marshal(s) // encoding/json also maps invalid UTF-8 to U+FFFD
		var w string
		_ = json.Unmarshal(want, &w)
		if got != w {
			t.Fatalf("%q: got %q want %q", s, got, w)
		}
	})
}
