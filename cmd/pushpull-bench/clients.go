package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// clientsPerIP is how many WebSocket clients share one loopback source
// address: below the limiter's burst of 60, so a ramp never waits.
const clientsPerIP = 50

// stampKey is the params field carrying the publish time (Unix ns).
const stampKey = "bt"

// errTooManyRetries ends a dial that kept getting 429.
var errTooManyRetries = errors.New("still rate limited after retries")

// mintToken signs a client token the way POST /api/v1/tokens does.
func mintToken(secret []byte, user string, ttl time.Duration) (string, error) {
	now := time.Now()
	return jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	}).SignedString(secret)
}

// sourceIP is the loopback address client i dials from.
func sourceIP(i int) net.IP {
	g := i/clientsPerIP + 1
	return net.IPv4(127, 1, byte(g>>8), byte(g))
}

// fleet is a set of connected WebSocket clients and their reader
// goroutines; close stops and waits for all of them.
type fleet struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	conns   []*websocket.Conn
	clients map[string]*http.Client // per source address

	received atomic.Int64
	frames   atomic.Int64 // WebSocket messages carrying events
	closed   atomic.Int64 // readers ended by the server (e.g. 4008)
	target   atomic.Int64 // when received reaches it, done is closed
	done     chan struct{}
	doneOnce sync.Once

	lat [][]int64 // per client, receive-minus-stamp in ns
	// lastRecv is the Unix ns of the latest event any client got.
	lastRecv atomic.Int64
}

func newFleet(ctx context.Context, n int) *fleet {
	ctx, cancel := context.WithCancel(ctx)
	f := &fleet{ctx: ctx, cancel: cancel, clients: map[string]*http.Client{}, done: make(chan struct{}), lat: make([][]int64, n)}
	f.target.Store(-1)
	return f
}

func (f *fleet) httpClient(ip net.IP) *http.Client {
	f.mu.Lock()
	defer f.mu.Unlock()
	if c := f.clients[ip.String()]; c != nil {
		return c
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}, Timeout: 10 * time.Second}
	c := &http.Client{Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: true}}
	f.clients[ip.String()] = c
	return c
}

// connect dials n clients (user of i from userOf) with par dialers, waits
// for each welcome and starts a reader per connection that records events.
func (f *fleet) connect(s *server, n, par int, userOf func(int) string) error {
	return f.connectSpread([]*server{s}, n, par, userOf)
}

// connectSpread is connect with client i dialing nodes[i mod len(nodes)]:
// round robin over the nodes of a cluster.
func (f *fleet) connectSpread(nodes []*server, n, par int, userOf func(int) string) error {
	idx := make(chan int)
	errs := make(chan error, par)
	var wg sync.WaitGroup
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range idx {
				if err := f.dialOne(nodes[i%len(nodes)], i, userOf(i)); err != nil {
					errs <- fmt.Errorf("client %d: %w", i, err)
					return
				}
			}
		}()
	}
	var err error
feed:
	for i := range n {
		select {
		case idx <- i:
		case err = <-errs:
			break feed
		case <-f.ctx.Done():
			err = f.ctx.Err()
			break feed
		}
	}
	close(idx)
	wg.Wait()
	if err == nil {
		select {
		case err = <-errs:
		default:
		}
	}
	return err
}

func (f *fleet) dialOne(s *server, i int, user string) error {
	tok, err := mintToken(s.secret, user, 2*time.Hour)
	if err != nil {
		return err
	}
	opts := &websocket.DialOptions{HTTPClient: f.httpClient(sourceIP(i))}
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(f.ctx, 15*time.Second)
		c, resp, err := websocket.Dial(ctx, s.wsURL+"?token="+tok, opts)
		cancel()
		if err == nil {
			c.SetReadLimit(4 << 20)
			if err := f.welcome(c); err != nil {
				c.CloseNow()
				return err
			}
			f.mu.Lock()
			f.conns = append(f.conns, c)
			f.mu.Unlock()
			f.wg.Add(1)
			go f.read(c, i)
			return nil
		}
		if resp == nil || resp.StatusCode != http.StatusTooManyRequests {
			return err
		}
		if attempt >= 20 {
			return errTooManyRetries
		}
		wait := time.Second
		if ra, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil && ra > 0 {
			wait = time.Duration(ra) * time.Second
		}
		select {
		case <-f.ctx.Done():
			return f.ctx.Err()
		case <-time.After(wait): // the server asked for this pause
		}
	}
}

func (f *fleet) welcome(c *websocket.Conn) error {
	ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
	defer cancel()
	_, data, err := c.Read(ctx)
	if err != nil {
		return fmt.Errorf("waiting for welcome: %w", err)
	}
	if !bytes.Contains(data, []byte(`"type":"welcome"`)) {
		return fmt.Errorf("first frame is not a welcome: %.200s", data)
	}
	return nil
}

var (
	eventMark = []byte(`"type":"event"`)
	stampMark = []byte(`"` + stampKey + `":`)
)

// read records every event on c until the fleet closes or the server ends
// the connection. It scans for the stamp instead of decoding JSON so the
// generator, which shares the cores with the server, stays cheap.
func (f *fleet) read(c *websocket.Conn, i int) {
	defer f.wg.Done()
	var buf []byte // reused: one allocation per client, not per frame
	for {
		data, err := readFrame(f.ctx, c, buf[:0])
		if err != nil {
			if f.ctx.Err() == nil {
				f.closed.Add(1)
			}
			return
		}
		buf = data
		now := time.Now().UnixNano()
		if bytes.Contains(data, eventMark) {
			f.frames.Add(1)
		}
		for len(data) > 0 {
			line := data
			if j := bytes.IndexByte(data, '\n'); j >= 0 {
				line, data = data[:j], data[j+1:]
			} else {
				data = nil
			}
			if !bytes.Contains(line, eventMark) {
				continue
			}
			if ts, ok := stamp(line); ok {
				f.lat[i] = append(f.lat[i], now-ts)
			}
			f.lastRecv.Store(now)
			if got := f.received.Add(1); got == f.target.Load() {
				f.doneOnce.Do(func() { close(f.done) })
			}
		}
	}
}

// readFrame appends the next message of c to buf.
func readFrame(ctx context.Context, c *websocket.Conn, buf []byte) ([]byte, error) {
	_, r, err := c.Reader(ctx)
	if err != nil {
		return buf, err
	}
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

func stamp(line []byte) (int64, bool) {
	j := bytes.Index(line, stampMark)
	if j < 0 {
		return 0, false
	}
	rest := line[j+len(stampMark):]
	var v int64
	k := 0
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		v = v*10 + int64(rest[k]-'0')
		k++
	}
	return v, k > 0
}

// expect arms done to close once total events have been received.
func (f *fleet) expect(total int64) {
	f.target.Store(total)
	if f.received.Load() >= total {
		f.doneOnce.Do(func() { close(f.done) })
	}
}

// latencies returns every recorded latency; call after the readers settle.
func (f *fleet) latencies() []int64 {
	var all []int64
	for _, l := range f.lat {
		all = append(all, l...)
	}
	return all
}

// close ends every connection and waits for the readers.
func (f *fleet) close() {
	f.cancel()
	f.mu.Lock()
	conns := f.conns
	f.conns = nil
	f.mu.Unlock()
	for _, c := range conns {
		c.CloseNow()
	}
	f.wg.Wait()
}
