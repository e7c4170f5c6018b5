package apns

import (
	"sync"
	"sync/atomic"
)

// pool runs the send loops of Send calls on goroutines kept between
// calls. A fresh goroutine per loop and per batch grew its stack through
// the HTTP/2 client every time (runtime.newstack was 8 % of the server's
// CPU in deliver-apns); a parked one keeps what it grew until a GC
// shrinks it. At most max goroutines are parked; a loop that finds none
// idle and the pool full runs on a goroutine of its own that ends with
// it. Concurrency per Send call is unchanged: Send still decides how many
// loops it runs.
type pool struct {
	max   int
	tasks chan func() // unbuffered: a task is handed to a waiting worker or not at all
	quit  chan struct{}

	mu     sync.Mutex
	live   int          // pooled workers started and not yet ended
	parked atomic.Int32 // pooled workers waiting for a task (for tests)
	closed bool
	wg     sync.WaitGroup // pooled workers and overflow goroutines
}

func newPool(max int) *pool {
	return &pool{max: max, tasks: make(chan func()), quit: make(chan struct{})}
}

// run runs f on an idle worker, a new pooled worker, or (pool full) a
// goroutine of its own, without waiting for it; after close it runs f
// itself.
func (p *pool) run(f func()) {
	select {
	case p.tasks <- f:
		return
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		// Nothing to send after Close (each push answers ErrClosed at
		// once): run it here rather than start a goroutine no one owns.
		f()
		return
	}
	pooled := p.live < p.max
	if pooled {
		p.live++
	}
	p.wg.Add(1)
	p.mu.Unlock()
	if !pooled {
		go func() {
			defer p.wg.Done()
			f()
		}()
		return
	}
	go p.worker(f)
}

// worker runs f, then every task handed to it, until close.
func (p *pool) worker(f func()) {
	defer p.wg.Done()
	defer func() {
		p.mu.Lock()
		p.live--
		p.mu.Unlock()
	}()
	for {
		f()
		p.parked.Add(1)
		select {
		case f = <-p.tasks:
			p.parked.Add(-1)
		case <-p.quit:
			p.parked.Add(-1)
			return
		}
	}
}

// close ends the parked workers and waits until every task handed to the
// pool before it has returned. It is called once.
func (p *pool) close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	close(p.quit)
	p.wg.Wait()
}
