package apns

import (
	"context"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
)

// TestPoolReusesWorkers: loops of later calls run on the goroutines the
// first call started, at most max are kept, and close waits for a task in
// flight and ends the parked workers.
func TestPoolReusesWorkers(t *testing.T) {
	t.Parallel()
	p := newPool(2)
	gate := make(chan struct{})
	var started sync.WaitGroup
	started.Add(3)
	var done sync.WaitGroup
	done.Add(3)
	for range 3 { // the third finds the pool full: a goroutine of its own
		p.run(func() {
			defer done.Done()
			started.Done()
			<-gate
		})
	}
	started.Wait()
	close(gate)
	done.Wait()
	p.mu.Lock()
	live := p.live
	p.mu.Unlock()
	if live != 2 {
		t.Fatalf("live workers = %d, want 2", live)
	}
	// A parked worker takes the next task: no new worker starts.
	ran := make(chan struct{})
	waitParked(t, p)
	p.run(func() { close(ran) })
	<-ran
	p.mu.Lock()
	live = p.live
	p.mu.Unlock()
	if live != 2 {
		t.Fatalf("after reuse live workers = %d, want 2", live)
	}

	// close waits for the task in flight.
	release := make(chan struct{})
	inFlight := make(chan struct{})
	waitParked(t, p)
	p.run(func() {
		close(inFlight)
		<-release
	})
	<-inFlight
	closed := make(chan struct{})
	go func() {
		p.close()
		close(closed)
	}()
	select {
	case <-closed:
		t.Fatal("close returned with a task in flight")
	case <-time.After(50 * time.Millisecond):
	}
	close(release)
	<-closed
	if p.live != 0 {
		t.Fatalf("after close live workers = %d", p.live)
	}
	// After close a task runs in the caller.
	ranInline := false
	p.run(func() { ranInline = true })
	if !ranInline {
		t.Fatal("task after close did not run inline")
	}
}

// waitParked waits until a worker can take a task without starting a new
// one (a worker is parked on the tasks channel).
func waitParked(t *testing.T, p *pool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		probe := make(chan struct{})
		select {
		case p.tasks <- func() { close(probe) }:
			<-probe
			return
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("no worker parked")
		}
		runtime.Gosched()
	}
}

// TestSendReusesGoroutinesAndCloseEndsThem: a second Send starts no new
// goroutines, and Close leaves none behind.
func TestSendReusesGoroutinesAndCloseEndsThem(t *testing.T) {
	e := newEnv(t, fake.APNsOptions{CountOnly: true}, func(o *Options) { o.Concurrency = 8 })
	batch := make([]providers.Message, 64)
	n := &providers.Notification{Body: "x"}
	for i := range batch {
		batch[i] = msg(tok(i), n)
	}
	for _, r := range e.p.Send(context.Background(), batch) {
		if r.Class != providers.Delivered {
			t.Fatalf("%+v", r)
		}
	}
	e.p.pool.mu.Lock()
	live := e.p.pool.live
	e.p.pool.mu.Unlock()
	if live == 0 || live > 7 {
		t.Fatalf("pooled workers after a Send = %d, want 1..7", live)
	}
	// Send returns when its loops have answered, a moment before their
	// workers park again; a Send in that moment may rightly start one.
	deadline := time.Now().Add(5 * time.Second)
	for int(e.p.pool.parked.Load()) < live {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d pooled workers parked", e.p.pool.parked.Load(), live)
		}
		runtime.Gosched()
	}
	e.p.Send(context.Background(), batch)
	e.p.pool.mu.Lock()
	again := e.p.pool.live
	e.p.pool.mu.Unlock()
	if again != live {
		t.Fatalf("pooled workers after a second Send = %d, want the %d parked ones reused", again, live)
	}
	if err := e.p.Close(); err != nil {
		t.Fatal(err)
	}
	if e.p.pool.live != 0 {
		t.Fatalf("pooled workers after Close = %d", e.p.pool.live)
	}
	for _, r := range e.p.Send(context.Background(), batch[:3]) {
		if r.Class != providers.Retry || r.Err != ErrClosed {
			t.Fatalf("after Close: %+v", r)
		}
	}
}
