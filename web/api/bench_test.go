package api

import (
	"fmt"
	"strings"
	"testing"
)

// pushBatchBody is a POST /push body of n notifications, each to one
// device given directly: the ingest scenario's shape.
func pushBatchBody(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"notifications":[`)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `{"devices":[{"platform":"fcm","token":"bench-%d"}],"title":"Bench","body":"hello from pushpull-bench","data":{"bid":"%d"}}`, i, i)
	}
	b.WriteString(`]}`)
	return []byte(b.String())
}

// BenchmarkDecodePush100 decodes a 100-notification POST /push body the way
// the handler does (strict: unknown fields rejected, numbers kept exact).
func BenchmarkDecodePush100(b *testing.B) {
	body := pushBatchBody(100)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var req PushRequest
		if err := DecodeBytes(body, &req); err != nil {
			b.Fatal(err)
		}
		if len(req.Notifications) != 100 {
			b.Fatalf("%d notifications", len(req.Notifications))
		}
	}
	b.ReportMetric(float64(b.N)*100/b.Elapsed().Seconds(), "notifications/s")
}

// BenchmarkDecodeEvents10 decodes a POST /events body of 10 events to one
// user each: the publish-latency and fanout shape.
func BenchmarkDecodeEvents10(b *testing.B) {
	var sb strings.Builder
	sb.WriteString(`{"events":[`)
	for i := range 10 {
		if i > 0 {
			sb.WriteByte(',')
		}
		fmt.Fprintf(&sb, `{"users":["u%d"],"module_id":"im","command":"message","params":{"chat":17,"text":"hello","bt":1700000000123456789},"expiry":60}`, i)
	}
	sb.WriteString(`]}`)
	body := []byte(sb.String())
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		var req EventsRequest
		if err := DecodeBytes(body, &req); err != nil {
			b.Fatal(err)
		}
		if len(req.Events) != 10 {
			b.Fatalf("%d events", len(req.Events))
		}
	}
}
