package fcm_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
)

// BenchmarkSendFCM sends batches of 1000 through the real firebase client,
// authenticated through the fake's OAuth endpoint, to the fake in
// counting mode. pushes/s is the figure to compare with the deliver-fcm
// target (>= 25,000 jobs/s). Client and fake share the machine's cores, so
// few workers win here (c=8); against real FCM, with tens of milliseconds
// per round trip, throughput is about Concurrency/RTT and the default 100
// (or more) is what keeps the pipe full.
func BenchmarkSendFCM(b *testing.B) {
	for _, c := range []int{8, fcm.DefaultConcurrency} {
		b.Run("c="+strconv.Itoa(c), func(b *testing.B) {
			f := startFake(b, fake.FCMOptions{CountOnly: true})
			p := oauthProvider(b, f, func(o *fcm.Options) { o.Concurrency = c })
			const size = 1000
			n := &providers.Notification{Title: "Anna", Body: "Hi there", Sound: "default", CollapseID: "chat17"}
			batch := make([]providers.Message, size)
			for i := range batch {
				batch[i] = msg("token-"+strconv.Itoa(i), n)
			}
			// Warm up: OAuth token and keep-alive connections.
			for i, r := range p.Send(context.Background(), batch) {
				if r.Class != providers.Delivered {
					b.Fatalf("warm-up message %d: %+v", i, r)
				}
			}
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				for i, r := range p.Send(context.Background(), batch) {
					if r.Class != providers.Delivered {
						b.Fatalf("message %d: %+v", i, r)
					}
				}
			}
			b.ReportMetric(float64(b.N*size)/b.Elapsed().Seconds(), "pushes/s")
		})
	}
}
