package cluster

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/pushpull/pushpull/gateway/hub"
)

func TestCodecRoundTrip(t *testing.T) {
	created := time.Unix(1_700_000_000, 123456789)
	ev := &hub.Event{ModuleID: "im", Command: "message", Params: json.RawMessage(`{"a":"ü\n"}`),
		Extra: json.RawMessage(`{"server_time":"x"}`), Expiry: 90 * time.Second}
	chs := []string{"user:1", "shared", ""}
	b := appendEvent(nil, chs, ev, created, []byte("meta"))
	gotChs, got, gotCreated, meta, err := decodeEvent(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(gotChs, chs) || got.ModuleID != ev.ModuleID || got.Command != ev.Command ||
		string(got.Params) != string(ev.Params) || string(got.Extra) != string(ev.Extra) ||
		got.Expiry != ev.Expiry || !gotCreated.Equal(created) || string(meta) != "meta" {
		t.Fatalf("round trip: %v %+v %v", gotChs, got, gotCreated)
	}
	for i := range b { // every truncation is an error, never a panic
		if _, _, _, _, err := decodeEvent(b[:i]); err == nil {
			t.Fatalf("truncated at %d decoded", i)
		}
	}
	if _, _, _, _, err := decodeEvent(append(b, 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
}

func FuzzDecodeEvent(f *testing.F) {
	f.Add(appendEvent(nil, []string{"user:1"}, &hub.Event{ModuleID: "m", Command: "c", Params: json.RawMessage(`{}`)}, time.Unix(1, 0), nil))
	f.Add(appendEvent(nil, []string{"a", "b"}, &hub.Event{Expiry: time.Second}, time.Unix(1, 0), []byte(`{"b":1}`)))
	f.Add([]byte{1, 255, 255, 255, 255, 15})
	f.Fuzz(func(t *testing.T, b []byte) {
		chs, ev, created, meta, err := decodeEvent(b)
		if err != nil {
			return
		}
		// What decodes re-encodes to the same bytes.
		if again := appendEvent(nil, chs, ev, created, meta); string(again) != string(b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}
