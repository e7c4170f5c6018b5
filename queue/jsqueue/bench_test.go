package jsqueue

import (
	"context"
	"testing"

	"github.com/pushpull/pushpull/queue"
)

// BenchmarkSubmit measures one Submit of a 10-device fan-out (10 job
// messages and 10 status records, all PubAck'd).
func BenchmarkSubmit(b *testing.B) {
	s := startServer(b, b.TempDir())
	defer s.Shutdown()
	js := connect(b, s)
	q, err := Open(context.Background(), js, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	payload := []byte(`{"title":"hello","body":"a push notification body of a usual size"}`)
	b.ReportAllocs()
	for b.Loop() {
		jobs := make([]*queue.Job, 10)
		for i := range jobs {
			jobs[i] = &queue.Job{NotificationID: "n", User: "u", Platform: "fcm", Payload: payload}
		}
		if _, _, err := q.Submit(context.Background(), queue.Submission{Jobs: jobs}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*10)/b.Elapsed().Seconds(), "jobs/s")
}

// BenchmarkLeaseAck measures leasing and acking batches of 100 jobs.
func BenchmarkLeaseAck(b *testing.B) {
	s := startServer(b, b.TempDir())
	defer s.Shutdown()
	js := connect(b, s)
	q, err := Open(context.Background(), js, Options{Logger: quiet()})
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		jobs := make([]*queue.Job, 100)
		for i := range jobs {
			jobs[i] = &queue.Job{NotificationID: "n", User: "u", Platform: "fcm", Payload: []byte("p")}
		}
		if _, _, err := q.Submit(ctx, queue.Submission{Jobs: jobs}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		got, err := q.Lease(ctx, 100)
		if err != nil || len(got) != 100 {
			b.Fatalf("leased %d: %v", len(got), err)
		}
		if err := q.Ack(ctx, ids(got)...); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "jobs/s")
}
