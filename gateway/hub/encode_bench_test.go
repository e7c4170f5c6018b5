package hub

import (
	"encoding/json"
	"testing"
)

// BenchmarkEncodeNative renders one event in the native format, as the hub
// does once per (format, channel kind) however many connections get it.
func BenchmarkEncodeNative(b *testing.B) {
	ev := &Event{
		ID: "1700000000000-42", ModuleID: "im", Command: "message",
		Params: json.RawMessage(`{"chat":17,"text":"hello \"world\"","bt":1700000000123456789}`),
		Extra:  json.RawMessage(`{"server_time_unix":1700000000}`),
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Native.Encode(ev, "user:42"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncodedShared asks a fresh event for its encoding from 1,000
// recipients: the cost of the encode-once cache on the fan-out path.
func BenchmarkEncodedShared(b *testing.B) {
	params := json.RawMessage(`{"chat":17,"text":"hello","bt":1700000000123456789}`)
	b.ReportAllocs()
	for b.Loop() {
		ev := &Event{ID: "1700000000000-42", ModuleID: "im", Command: "message", Params: params}
		for range 1000 {
			if _, err := ev.Encoded(Native, "shared"); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkJoinFrame joins 16 encoded events into one frame, as a
// connection's writer does with what is queued.
func BenchmarkJoinFrame(b *testing.B) {
	ev := &Event{ID: "1700000000000-42", ModuleID: "im", Command: "message", Params: json.RawMessage(`{"a":1}`)}
	enc, err := Native.Encode(ev, "shared")
	if err != nil {
		b.Fatal(err)
	}
	items := make([][]byte, 16)
	for i := range items {
		items[i] = enc
	}
	var dst []byte
	b.ReportAllocs()
	for b.Loop() {
		dst = Native.Join(dst[:0], items)
	}
}
