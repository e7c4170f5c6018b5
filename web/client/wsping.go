package client

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// pingSlots is how many groups the WebSocket connections are spread over:
// one group is pinged per PingInterval/pingSlots, so pings are spread over
// the interval rather than sent in one burst.
const pingSlots = 16

// pingWheel pings every open WebSocket once per interval from a single
// goroutine, instead of a ticker goroutine per connection (which cost a
// goroutine stack and a timer for every idle connection). A peer that does
// not answer within two intervals is dropped, as before.
//
// The wheel's goroutine runs only while at least one connection is
// registered: the first add starts it, and the remove of the last stops it
// and waits for it. Each ping in flight runs in a short-lived goroutine
// owned by its peer; remove cancels it and waits for it.
type pingWheel struct {
	interval time.Duration

	mu    sync.Mutex
	slots [pingSlots]map[*wsPeer]struct{}
	cur   int // next slot the loop visits
	n     int // peers registered
	stop  chan struct{}
	done  chan struct{}
}

// wsPeer is one registered connection.
type wsPeer struct {
	conn    *websocket.Conn
	slot    int
	pinging bool // guarded by pingWheel.mu
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
}

func newPingWheel(interval time.Duration) *pingWheel {
	w := &pingWheel{interval: interval}
	for i := range w.slots {
		w.slots[i] = make(map[*wsPeer]struct{})
	}
	return w
}

// add registers conn; its first ping comes about one interval from now.
// The caller must call remove with the result when the connection ends.
func (w *pingWheel) add(conn *websocket.Conn) *wsPeer {
	ctx, cancel := context.WithCancel(context.Background())
	p := &wsPeer{conn: conn, ctx: ctx, cancel: cancel}
	w.mu.Lock()
	defer w.mu.Unlock()
	// The slot visited last in the current round: pinged after between
	// interval-tick and interval.
	p.slot = (w.cur + pingSlots - 1) % pingSlots
	w.slots[p.slot][p] = struct{}{}
	if w.n++; w.n == 1 {
		w.stop, w.done = make(chan struct{}), make(chan struct{})
		go w.loop(w.stop, w.done)
	}
	return p
}

// remove unregisters p, ends its ping in flight and waits for it; the last
// remove also stops the wheel's goroutine and waits for it.
func (w *pingWheel) remove(p *wsPeer) {
	w.mu.Lock()
	delete(w.slots[p.slot], p)
	var stop, done chan struct{}
	if w.n--; w.n == 0 {
		stop, done = w.stop, w.done
		w.stop, w.done = nil, nil
	}
	w.mu.Unlock()
	p.cancel()
	p.wg.Wait()
	if stop != nil {
		close(stop)
		<-done
	}
}

func (w *pingWheel) loop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(w.interval / pingSlots)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			w.tick()
		}
	}
}

// tick pings the peers of the current slot that have no ping in flight.
func (w *pingWheel) tick() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for p := range w.slots[w.cur] {
		if p.pinging {
			continue // still waiting for the pong of the last one
		}
		p.pinging = true
		p.wg.Add(1)
		go w.ping(p)
	}
	w.cur = (w.cur + 1) % pingSlots
}

// ping sends one ping and waits up to two intervals for the pong; a peer
// that does not answer is gone, with no close handshake to wait for: the
// read loop sees the error and closes the hub connection.
func (w *pingWheel) ping(p *wsPeer) {
	defer p.wg.Done()
	ctx, cancel := context.WithTimeout(p.ctx, 2*w.interval)
	err := p.conn.Ping(ctx)
	cancel()
	if err != nil && p.ctx.Err() == nil {
		p.conn.CloseNow()
	}
	w.mu.Lock()
	p.pinging = false
	w.mu.Unlock()
}

// wsReadBuffer is the read buffer of a WebSocket connection. Clients send
// only small frames (ping, ack, watch); net/http hands a hijacked
// connection over with its 4 KiB request buffer, which would otherwise sit
// in every idle connection. The write buffer keeps its 4 KiB: one frame,
// one write.
const wsReadBuffer = 512

// smallReadHijacker is the response writer given to websocket.Accept: its
// Hijack swaps the read buffer for a wsReadBuffer one.
type smallReadHijacker struct{ http.ResponseWriter }

// Hijack implements http.Hijacker. When the client has already sent bytes
// past the request (frames before the 101 arrived), net/http's reader is
// handed over as it is: websocket.Accept carries over only what is
// buffered in the reader it gets, so a fresh reader in front of those
// bytes would lose them.
func (w smallReadHijacker) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil || brw.Reader.Buffered() > 0 {
		return conn, brw, err
	}
	return conn, bufio.NewReadWriter(bufio.NewReaderSize(conn, wsReadBuffer), brw.Writer), nil
}
