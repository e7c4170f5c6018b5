package apns

import (
	"context"
	"testing"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

// BenchmarkSendAPNs sends batches of 1000 through the real apns2 client to
// the fake (HTTP/2, TLS, JWT verified, counting only). One op is one batch;
// pushes/s is the figure to compare with the 32,000 jobs/s target.
func BenchmarkSendAPNs(b *testing.B) {
	for _, bc := range []struct {
		name   string
		shared bool
	}{{"shared", true}, {"distinct", false}} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, fake.APNsOptions{CountOnly: true}, nil)
			const size = 1000
			batch := make([]providers.Message, size)
			shared := &providers.Notification{Title: "Anna", Body: "Hi there", Data: []byte(`{"chat_id":42}`)}
			for i := range batch {
				n := shared
				if !bc.shared {
					n = &providers.Notification{Title: "Anna", Body: "Hi there", Data: []byte(`{"chat_id":42}`)}
				}
				batch[i] = msg(tok(i), n)
			}
			// Warm the connections so the numbers are steady-state.
			e.p.Send(context.Background(), batch)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i, r := range e.p.Send(context.Background(), batch) {
					if r.Class != providers.Delivered {
						b.Fatalf("result %d: %+v", i, r)
					}
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}

// BenchmarkRender renders one notification the way the API's validation
// and the sender do, for the direct path (no override) and the general
// map path (an override present).
func BenchmarkRender(b *testing.B) {
	badge := 3
	base := providers.Notification{Title: "Bench", Body: "hello from pushpull-bench", Badge: &badge,
		Data: []byte(`{"bid":"12345","chat":{"id":42,"kind":"dm"}}`)}
	withOverride := base
	withOverride.APNs = []byte(`{"aps":{"interruption-level":"time-sensitive"}}`)
	for _, bc := range []struct {
		name string
		n    *providers.Notification
	}{{"direct", &base}, {"override", &withOverride}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := CheckNotification(bc.n); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
