package push

import (
	"context"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// runDispatchBench measures jobs/s from Push (durable enqueue) to accepted
// by the fake, with the dispatcher running: each op is one job, pushed in
// notifications of 1000 direct device targets.
func runDispatchBench(b *testing.B, e *env, platform, appID string, token func(int) string, wait func(context.Context, int64) error) {
	const perPush = 1000
	n := providers.Notification{Title: "Anna", Body: "Hi there", Badge: intp(1)}
	e.start()
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for sent := 0; sent < b.N; sent += perPush {
		req := Request{Notification: n}
		for i := sent; i < min(sent+perPush, b.N); i++ {
			req.Devices = append(req.Devices, DeviceTarget{Platform: platform, Token: token(i), AppID: appID})
		}
		if _, err := e.svc.Push(context.Background(), []Request{req}); err != nil {
			b.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if err := wait(ctx, int64(b.N)); err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "jobs/s")
}

// BenchmarkDispatchAPNs: enqueue -> dispatcher -> real apns2 client ->
// fake APNs (HTTP/2, TLS, JWT checked) in counting mode.
func BenchmarkDispatchAPNs(b *testing.B) {
	e := newEnv(b, envConfig{countOnly: true, noFCM: true})
	runDispatchBench(b, e, "apns", apnsApp, apnsToken, e.prod.WaitDelivered)
}

// BenchmarkDispatchFCM: enqueue -> dispatcher -> real firebase client
// (OAuth) -> fake FCM in counting mode.
func BenchmarkDispatchFCM(b *testing.B) {
	e := newEnv(b, envConfig{countOnly: true})
	runDispatchBench(b, e, "fcm", fcmApp, fcmToken, e.fcm.WaitDelivered)
}
