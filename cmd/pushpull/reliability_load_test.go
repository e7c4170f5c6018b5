package main

// Load with faults against the real binary: WebSocket clients on the real
// client listener, a steady publish rate to everyone, clients that stop
// reading (slow consumers) and clients that disconnect and resume. Fast
// clients must get every event (their latency is reported), slow ones are
// cut with 4008, resumed ones miss nothing that was in history, and the
// child's peak RSS is reported.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/golang-jwt/jwt/v5"
)

// clientToken mints a client JWT the way a backend with a JWT library does.
func clientToken(t *testing.T, user string) string {
	t.Helper()
	now := time.Now()
	s, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": user, "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString([]byte(relSecret))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// peakRSS is the child's peak resident set size in KiB (VmHWM).
func peakRSS(pid int) int64 {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, l := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(l, "VmHWM:"); ok {
			var kb int64
			fmt.Sscan(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), &kb)
			return kb
		}
	}
	return -1
}

// loadClient is one WebSocket client and what it received.
type loadClient struct {
	conn  *websocket.Conn
	mu    sync.Mutex
	ids   []string
	lat   []time.Duration
	close websocket.StatusCode
}

func (c *loadClient) snapshot() ([]string, websocket.StatusCode) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.ids...), c.close
}

// dialLoad opens a client for user behind a distinct forwarded address
// (the gateway trusts loopback as a proxy), so per-address limits apply
// per simulated client as they would behind a real proxy.
func dialLoad(ctx context.Context, t *testing.T, addr, user, since string, n int) (*loadClient, string) {
	t.Helper()
	u := "ws://" + addr + "/sub/ws?token=" + clientToken(t, user)
	if since != "" {
		u += "&since=" + since
	}
	h := http.Header{}
	h.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", n>>16&255, n>>8&255, n&255))
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: h})
	if err != nil {
		t.Fatalf("dial %s: %v", user, err)
	}
	conn.SetReadLimit(64 << 20) // frames coalesce many events
	_, msg, err := conn.Read(ctx)
	if err != nil || !bytes.Contains(msg, []byte(`"welcome"`)) {
		t.Fatalf("%s: no welcome: %q %v", user, msg, err)
	}
	var w struct {
		LastID  string `json:"last_id"`
		Resumed bool   `json:"resumed"`
	}
	_ = json.Unmarshal(bytes.SplitN(msg, []byte("\n"), 2)[0], &w)
	return &loadClient{conn: conn}, w.LastID
}

// field returns the bytes after the first prefix up to end.
func field(line []byte, prefix string, end byte) []byte {
	i := bytes.Index(line, []byte(prefix))
	if i < 0 {
		return nil
	}
	rest := line[i+len(prefix):]
	if j := bytes.IndexByte(rest, end); j >= 0 {
		return rest[:j]
	}
	return rest
}

// read consumes frames until the connection ends.
func (c *loadClient) read(ctx context.Context) {
	for {
		_, msg, err := c.conn.Read(ctx)
		if err != nil {
			c.mu.Lock()
			c.close = websocket.CloseStatus(err)
			c.mu.Unlock()
			return
		}
		now := time.Now()
		// Thousands of clients share the test's cores with the gateway:
		// pick the two fields out instead of decoding every event.
		for _, line := range bytes.Split(msg, []byte("\n")) {
			if !bytes.HasPrefix(line, []byte(`{"type":"event"`)) {
				continue
			}
			id := field(line, `"id":"`, '"')
			ts, _ := strconv.ParseInt(string(field(line, `"t":`, ',')), 10, 64)
			c.mu.Lock()
			c.ids = append(c.ids, string(id))
			c.lat = append(c.lat, now.Sub(time.Unix(0, ts)))
			c.mu.Unlock()
		}
	}
}

func TestReliabilityLoadWithFaults(t *testing.T) {
	clients, slowN, resumeN := 2000, 20, 50
	if raceEnabled && !soak() {
		clients = 400 // the race-instrumented child is several times slower
	}
	if testing.Short() {
		clients, slowN, resumeN = 200, 5, 10
	}
	dur, rate := 4*time.Second, 20
	if soak() {
		dur = time.Minute
	}
	// Small per-connection queues so slow consumers overflow quickly.
	e := newRelEnv(t, "")
	e.toml = strings.Replace(e.toml, "[server]\n", "[server]\ntrusted_proxies = [\"127.0.0.0/8\"]\n", 1) + `
[live]
queue_size = 64
history_size = 10000
`
	if err := os.WriteFile(e.cfg, []byte(e.toml), 0o600); err != nil {
		t.Fatal(err)
	}
	p := e.start(t, nil)
	api := newRelAPI(p.api)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	fast := make([]*loadClient, 0, clients-slowN-resumeN)
	slow := make([]*loadClient, 0, slowN)
	type resumer struct {
		c    *loadClient
		user string
		n    int
	}
	res := make([]*resumer, 0, resumeN)
	var readers sync.WaitGroup
	start := time.Now()
	for i := range clients {
		user := fmt.Sprintf("load-%d", i)
		c, _ := dialLoad(ctx, t, p.client, user, "", i)
		switch {
		case i < slowN:
			slow = append(slow, c) // never read until the end
		case i < slowN+resumeN:
			res = append(res, &resumer{c: c, user: user, n: i})
			readers.Go(func() { c.read(ctx) })
		default:
			fast = append(fast, c)
			readers.Go(func() { c.read(ctx) })
		}
	}

	// Steady publishing to everyone; each event carries its send time.
	pad := strings.Repeat("p", 512)
	var published atomic.Int64
	var pubLat []time.Duration // written by the publisher until pubDone
	pubDone := make(chan struct{})
	t.Logf("%d clients connected in %v", clients, time.Since(start).Round(time.Millisecond))
	start = time.Now()
	go func() {
		defer close(pubDone)
		tick := time.NewTicker(time.Second / time.Duration(rate))
		defer tick.Stop()
		end := time.Now().Add(dur)
		for time.Now().Before(end) {
			<-tick.C
			body := fmt.Sprintf(`{"events":[{"shared":true,"module_id":"load","command":"tick","params":{"t":%d,"pad":%q},"expiry":600}]}`, time.Now().UnixNano(), pad)
			t0 := time.Now()
			status, raw, err := api.do(ctx, http.MethodPost, "/api/v1/events", []byte(body))
			if err != nil || status != http.StatusAccepted {
				t.Errorf("publish: %d %s %v", status, raw, err)
				return
			}
			pubLat = append(pubLat, time.Since(t0))
			published.Add(1)
		}
	}()

	// A heavy stream to the slow consumers only (64 KiB events, encoded
	// once): enough bytes to fill the socket buffers of a client that does
	// not read, so that its queue overflows.
	slowUsers := make([]string, slowN)
	for i := range slowUsers {
		slowUsers[i] = fmt.Sprintf("%q", fmt.Sprintf("load-%d", i))
	}
	heavy := strings.Repeat("h", 64<<10)
	const heavyN = 200
	heavyDone := make(chan struct{})
	go func() {
		defer close(heavyDone)
		for range heavyN {
			body := fmt.Sprintf(`{"events":[{"users":[%s],"module_id":"load","command":"heavy","params":{"pad":%q},"expiry":0}]}`, strings.Join(slowUsers, ","), heavy)
			if status, raw, err := api.do(ctx, http.MethodPost, "/api/v1/events", []byte(body)); err != nil || status != http.StatusAccepted {
				t.Errorf("heavy publish: %d %s %v", status, raw, err)
				return
			}
		}
	}()

	// Resumers drop their connection a third of the way in and come back
	// with since=<last id> while publishing goes on.
	time.Sleep(dur / 3) // a point in the run, not a wait for an event
	var resumed sync.WaitGroup
	for _, r := range res {
		ids, _ := r.c.snapshot()
		r.c.conn.CloseNow()
		resumed.Go(func() {
			since := ""
			if len(ids) > 0 {
				since = ids[len(ids)-1]
			}
			c, _ := dialLoad(ctx, t, p.client, r.user, since, r.n)
			c.ids = ids
			r.c = c
			readers.Go(func() { c.read(ctx) })
		})
	}
	resumed.Wait()
	<-pubDone
	<-heavyDone
	total := int(published.Load())
	pubTime := time.Since(start)
	slices.Sort(pubLat)
	t.Logf("published %d events in %v; publish answer p50 %v max %v", total, pubTime.Round(time.Millisecond), pubLat[len(pubLat)/2], pubLat[len(pubLat)-1])

	// Everyone who reads gets everything; wait for the tail to arrive.
	waitFor(t, 60*time.Second, "fast clients to receive every event", func() bool {
		for _, c := range fast {
			if ids, _ := c.snapshot(); len(ids) < total {
				return false
			}
		}
		return true
	})
	ref, _ := fast[0].snapshot()
	if len(ref) != total {
		t.Fatalf("reference client got %d of %d events", len(ref), total)
	}
	var lat []time.Duration
	for i, c := range fast {
		ids, code := c.snapshot()
		if code != -1 && code != 0 {
			t.Errorf("fast client %d was closed %d", i, code)
		}
		if !slices.Equal(ids, ref) {
			t.Errorf("fast client %d: %d events, differs from the reference", i, len(ids))
		}
		c.mu.Lock()
		lat = append(lat, c.lat...)
		c.mu.Unlock()
	}
	missed := 0
	for i, r := range res {
		waitFor(t, 30*time.Second, "resumed clients to catch up", func() bool {
			ids, _ := r.c.snapshot()
			return len(ids) > 0 && ids[len(ids)-1] == ref[len(ref)-1]
		})
		ids, _ := r.c.snapshot()
		if !slices.Equal(ids, ref) {
			missed++
			t.Errorf("resumed client %d: %d events, want the %d of the reference, no gap, no duplicate", i, len(ids), len(ref))
		}
	}
	// Slow consumers: the server cut each one (its log says so); the
	// client reads what was buffered and then finds the connection closed:
	// with 4008 when there was room for the close frame, else without one
	// (the socket was full: the frame could not be written).
	slowClosed := p.count("closing slow consumer")
	if slowClosed < slowN {
		t.Errorf("the server cut %d slow consumers, want %d", slowClosed, slowN)
	}
	cut, cutNoFrame := 0, 0
	for i, c := range slow {
		rctx, rcancel := context.WithTimeout(ctx, 30*time.Second)
		c.read(rctx)
		timedOut := rctx.Err() != nil
		rcancel()
		ids, code := c.snapshot()
		switch {
		case code == 4008:
			cut++
		case !timedOut && code == -1:
			cutNoFrame++
		default:
			t.Errorf("slow client %d ended with %d (%d events read)", i, code, len(ids))
		}
		if len(ids) >= total+heavyN {
			t.Errorf("slow client %d got all %d events: it was not cut", i, len(ids))
		}
	}
	rss := peakRSS(p.cmd.Process.Pid)
	slices.Sort(lat)
	pct := func(q float64) time.Duration { return lat[int(q*float64(len(lat)-1))].Round(time.Microsecond) }
	figure(t, "load clients=%d (fast %d, slow %d, resumed %d) race=%v events=%d rate=%d/s (achieved %.1f/s) fast_latency p50=%v p99=%v max=%v slow_cut=%d/%d (close 4008 seen %d, socket full %d) resumed_missed=%d peak_rss=%d KiB",
		clients, len(fast), slowN, resumeN, raceEnabled, total, rate, float64(total)/pubTime.Seconds(), pct(0.5), pct(0.99), pct(1), slowClosed, slowN, cut, cutNoFrame, missed, rss)
	cancel()
	for _, c := range fast {
		c.conn.CloseNow()
	}
	for _, r := range res {
		r.c.conn.CloseNow()
	}
	readers.Wait()
}
