package queue

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// BenchmarkEnqueueParallel measures durably committed jobs per second with
// many concurrent callers, as the push API produces them. With one job per
// call the rate is about callers / commit latency (fsync bound); batch=100
// with 32 callers is the "ingest" scenario of BENCHMARKS.md.
func BenchmarkEnqueueParallel(b *testing.B) {
	payload := []byte(`{"title":"Anna","body":"Hi there, this is a chat message","data":{"chat":17},"badge":3}`)
	for _, c := range []struct{ batch, par int }{{1, 32}, {1, 256}, {100, 16}} {
		batch := c.batch
		b.Run(fmt.Sprintf("batch=%d/callers=%dxGOMAXPROCS", batch, c.par), func(b *testing.B) {
			h := newHarness(b, Options{Now: time.Now})
			ctx := context.Background()
			b.ReportAllocs()
			b.SetParallelism(c.par)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				jobs := make([]*Job, batch)
				for pb.Next() {
					for i := range jobs {
						jobs[i] = &Job{User: "42", DeviceID: "d", Platform: "fcm", AppID: "app", Token: "token-token-token", SubTag: "", Payload: payload}
					}
					if err := h.q.Enqueue(ctx, jobs...); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "jobs/s")
			b.ReportMetric(float64(h.q.committedOps.Load())/float64(max(h.q.commits.Load(), 1)), "calls/commit")
			ts := h.db.Stats().TxStats
			b.ReportMetric(float64(ts.GetWriteTime().Microseconds())/float64(max(h.q.commits.Load(), 1)), "write+fsync-us/commit")
		})
	}
}

// BenchmarkLeaseAck measures the dispatcher cycle: lease 100 due jobs,
// ack them (one durable commit per cycle).
func BenchmarkLeaseAck(b *testing.B) {
	const per = 100
	h := newHarness(b, Options{Now: time.Now})
	ctx := context.Background()
	payload := []byte(`{"title":"Anna","body":"Hi there"}`)
	jobs := make([]*Job, 0, 1000)
	for n := 0; n < b.N*per; n += len(jobs) {
		jobs = jobs[:0]
		for range min(1000, b.N*per-n) {
			jobs = append(jobs, &Job{User: "42", Platform: "fcm", Token: "t", Payload: payload})
		}
		h.enqueue(jobs...)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		leased, err := h.q.Lease(ctx, per)
		if err != nil || len(leased) != per {
			b.Fatalf("leased %d: %v", len(leased), err)
		}
		if err := h.q.Ack(ctx, ids(leased)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*per)/time.Since(start).Seconds(), "jobs/s")
}
