package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// pollers holds n long polls open (GET /sub/poll?wait=) until close; each
// poll has its own TCP connection from a spread of loopback addresses, like
// the WebSocket fleet, so the per-address limit does not slow the ramp.
type pollers struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup
	failed atomic.Int64 // polls that ended with an error or early answer
	first  atomic.Value // string: the first failure, for the error message
}

func (p *pollers) fail(why string) {
	p.failed.Add(1)
	p.first.CompareAndSwap(nil, why)
}

// holdPolls starts n long polls (users "p<i>") numbered from first (for the
// source address) and returns once the server reports them all held.
func holdPolls(ctx context.Context, f *fleet, s *server, n, first int, wait time.Duration) (*pollers, error) {
	ctx, cancel := context.WithCancel(ctx)
	p := &pollers{cancel: cancel}
	base := strings.Replace(strings.TrimSuffix(s.wsURL, "/ws"), "ws://", "http://", 1) + "/poll"
	// At most 64 connects in flight: thousands of simultaneous dials
	// overflow the listen backlog and fail as resets, not as a measurement.
	dialing := make(chan struct{}, 64)
	for i := range n {
		tok, err := mintToken(s.secret, "p"+strconv.Itoa(i), 2*time.Hour)
		if err != nil {
			p.close()
			return nil, err
		}
		hc := f.httpClient(sourceIP(first + i))
		u := base + "?wait=" + strconv.Itoa(int(wait/time.Second)) + "&token=" + tok
		select {
		case dialing <- struct{}{}:
		case <-ctx.Done():
			p.close()
			return nil, ctx.Err()
		}
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			var once sync.Once
			connected := func() { once.Do(func() { <-dialing }) }
			defer connected()
			trace := &httptrace.ClientTrace{GotConn: func(httptrace.GotConnInfo) { connected() }}
			req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodGet, u, nil)
			if err != nil {
				p.fail(err.Error())
				return
			}
			resp, err := hc.Do(req)
			if err != nil {
				if ctx.Err() == nil {
					p.fail(err.Error())
				}
				return
			}
			b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
			resp.Body.Close()
			if ctx.Err() == nil { // answered before the measurement ended
				p.fail(fmt.Sprintf("%d %s", resp.StatusCode, b))
			}
		}()
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		held, err := s.pollersHeld(ctx)
		if err != nil {
			p.close()
			return nil, err
		}
		if held >= n {
			return p, nil
		}
		if time.Now().After(deadline) || p.failed.Load() > 0 {
			p.close()
			return nil, fmt.Errorf("%d of %d polls held, %d failed, first: %v", held, n, p.failed.Load(), p.first.Load())
		}
		select {
		case <-ctx.Done():
			p.close()
			return nil, ctx.Err()
		case <-time.After(100 * time.Millisecond): // poll interval
		}
	}
}

// close ends every poll and waits for their goroutines.
func (p *pollers) close() {
	p.cancel()
	p.wg.Wait()
}

// pollersHeld asks GET /api/v1/online how many long polls are held.
func (s *server) pollersHeld(ctx context.Context) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/api/v1/online", nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v struct {
		Pollers int `json:"pollers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("GET /api/v1/online: %w", err)
	}
	return v.Pollers, nil
}
