package hub

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// discardTransport counts the events it is handed (native frames: one per
// line) and drops them.
type discardTransport struct{ events *atomic.Int64 }

func (d discardTransport) WriteFrame(_ context.Context, frame []byte) error {
	d.events.Add(int64(bytes.Count(frame, []byte{'\n'}) + 1))
	return nil
}
func (discardTransport) Close(int, string) error { return nil }

func BenchmarkPublishFanout1000(b *testing.B) {
	h := newHub(b, Options{QueueSize: 1 << 20})
	var delivered atomic.Int64
	const conns = 1000
	for i := range conns {
		c := h.NewConn(discardTransport{&delivered}, Native, ConnInfo{})
		if _, err := h.Subscribe(c, []string{fmt.Sprintf("user:%d", i), "shared"}, ""); err != nil {
			b.Fatal(err)
		}
		c.Start(nil)
	}
	b.Cleanup(func() { h.CloseAll(1001, "") })
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		h.Publish([]string{"shared"}, ev("x"))
	}
	want := int64(b.N) * conns
	for delivered.Load() < want {
		runtime.Gosched()
	}
	b.ReportMetric(float64(want)/time.Since(start).Seconds(), "events/s")
}

func BenchmarkPublishUser(b *testing.B) {
	h := newHub(b, Options{})
	var delivered atomic.Int64
	const users = 10000
	names := make([]string, users)
	for i := range names {
		names[i] = fmt.Sprintf("user:%d", i)
		if i%2 == 0 { // half the users online, one connection each
			c := h.NewConn(discardTransport{&delivered}, Native, ConnInfo{})
			if _, err := h.Subscribe(c, []string{names[i], "shared"}, ""); err != nil {
				b.Fatal(err)
			}
			c.Start(nil)
		}
	}
	b.Cleanup(func() { h.CloseAll(1001, "") })
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(next.Add(7919))
		for pb.Next() {
			i++
			h.Publish([]string{names[i%users]}, ev("x"))
		}
	})
}

// BenchmarkSubscribeResume measures a reconnect that replays 100 events.
func BenchmarkSubscribeResume(b *testing.B) {
	h := newHub(b, Options{})
	since := h.Epoch() + "0000000000000000"
	for range 100 {
		h.Publish([]string{"user:1"}, ev("x"))
	}
	var delivered atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c := h.NewConn(discardTransport{&delivered}, Native, ConnInfo{})
		if res, _ := h.Subscribe(c, []string{"user:1", "shared"}, since); res.Replayed != 100 {
			b.Fatal(res)
		}
		c.Close(1000, "")
	}
}

// heapAfterGC returns the live heap.
func heapAfterGC() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc
}

// BenchmarkIdleConnMemory reports the hub's heap per idle connection
// (subscribed to its user channel and shared, welcome frame written, writer
// gone) over 10,000 connections. Run with -benchtime=1x.
func BenchmarkIdleConnMemory(b *testing.B) {
	const n = 10000
	for range b.N {
		h := newHub(b, Options{})
		var delivered atomic.Int64
		conns := make([]*Conn, n)
		tr := discardTransport{&delivered}
		before := heapAfterGC()
		for i := range conns {
			c := h.NewConn(tr, Native, ConnInfo{User: fmt.Sprint(i), Client: "web", Transport: "websocket"})
			if _, err := h.Subscribe(c, []string{fmt.Sprintf("user:%d", i), "shared"}, ""); err != nil {
				b.Fatal(err)
			}
			c.Start([]byte(`{"type":"welcome"}`))
			conns[i] = c
		}
		for delivered.Load() < n {
			runtime.Gosched()
		}
		goroutines := runtime.NumGoroutine()
		after := heapAfterGC()
		b.ReportMetric(float64(after-before)/n, "heapB/conn")
		b.ReportMetric(float64(goroutines), "goroutines")
		runtime.KeepAlive(conns)
		h.CloseAll(1001, "")
	}
}

// BenchmarkHeldPollMemory reports the hub's heap per held long poll over
// 10,000 polls (the goroutines are the callers'; their stacks are not
// counted). Run with -benchtime=1x.
func BenchmarkHeldPollMemory(b *testing.B) {
	const n = 10000
	for range b.N {
		h := newHub(b, Options{})
		ctx, cancel := context.WithCancel(context.Background())
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				_, _ = h.Poll(ctx, []string{fmt.Sprintf("user:%d", i), "shared"}, "", time.Hour)
			}()
		}
		before := heapAfterGC()
		close(start)
		sh := h.shards[h.shardOf("shared")]
		for {
			sh.mu.Lock()
			held := 0
			if ch := sh.chans["shared"]; ch != nil {
				held = len(ch.waiters)
			}
			sh.mu.Unlock()
			if held == n {
				break
			}
			runtime.Gosched()
		}
		after := heapAfterGC()
		b.ReportMetric(float64(after-before)/n, "heapB/poll")
		cancel()
		wg.Wait()
	}
}
