package main

import (
	"context"
	"flag"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

func runPublishLatency(ctx context.Context, env *runEnv, args []string) (*result, error) {
	fs := flag.NewFlagSet("publish-latency", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	rate := fs.Int("rate", 1000, "requests per second, one event to the online user each")
	duration := fs.Duration("duration", 10*time.Second, "how long to publish")
	workers := fs.Int("workers", 64, "concurrent callers available to keep the rate")
	resolve := commonFlags(fs, env)
	if err := parse(ctx, fs, args, resolve); err != nil {
		return nil, err
	}
	if *rate < 1 || *duration <= 0 || *workers < 1 {
		return nil, fmt.Errorf("%w: -rate, -duration and -workers must be positive", errUsage)
	}
	s, err := env.start(ctx)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	f := newFleet(ctx, 1)
	defer f.close()
	const user = "u0"
	if err := f.connect(s, 1, 1, func(int) string { return user }); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	before, err := s.proc()
	if err != nil {
		return nil, err
	}
	prof, err := startPerf(env, s)
	if err != nil {
		return nil, err
	}
	defer prof.stop()

	// A fixed schedule: request k is due at start + k/rate. A request that
	// finds every worker busy is counted as missed instead of queued, so a
	// slow server shows as a lower achieved rate.
	jobs := make(chan struct{}, *workers)
	apiLat := make([][]int64, *workers)
	var sent, failed atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	var wg sync.WaitGroup
	for w := range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range jobs {
				t := time.Now()
				st, out, err := s.post(ctx, "/api/v1/events", eventBody(1, user))
				d := time.Since(t)
				if err == nil && st != http.StatusAccepted {
					err = fmt.Errorf("POST /api/v1/events: %d %.300s", st, out)
				}
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				sent.Add(1)
				apiLat[w] = append(apiLat[w], int64(d))
			}
		}()
	}
	total := int(float64(*rate) * duration.Seconds())
	interval := time.Second / time.Duration(*rate)
	start := time.Now()
	missed := 0
	for k := range total {
		if d := time.Until(start.Add(time.Duration(k) * interval)); d > 0 {
			select {
			case <-time.After(d): // the schedule, not a wait for an event
			case <-ctx.Done():
			}
		}
		if ctx.Err() != nil {
			break
		}
		select {
		case jobs <- struct{}{}:
		default:
			missed++
		}
	}
	close(jobs)
	wg.Wait()
	pubTime := time.Since(start)
	f.expect(sent.Load())
	select {
	case <-f.done:
	case <-time.After(min(env.timeout, 30*time.Second)):
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	prof.stop()
	res := &result{Unit: "requests/s"}
	res.setServer(s, before)
	got := f.received.Load()
	f.close()
	recv := f.latencies()
	var api []int64
	for _, l := range apiLat {
		api = append(api, l...)
	}
	res.setLatency(api)
	res.Throughput = float64(sent.Load()) / pubTime.Seconds()
	res.Params = map[string]any{"rate": *rate, "duration": duration.String(), "workers": *workers}
	res.Extra = map[string]any{
		"sent": sent.Load(), "failed": failed.Load(), "missed": missed, "received": got,
		"receive_p50_ms": pct(recv, 50), "receive_p90_ms": pct(recv, 90), "receive_p99_ms": pct(recv, 99),
	}
	res.Summary = fmt.Sprintf("publish-latency: %.0f req/s for %s (%d sent, %d missed, %d failed, %d received); API p50 %.2f ms p99 %.2f ms; publish→receive p50 %.2f ms p99 %.2f ms; server RSS %d KiB, CPU %.2fs",
		res.Throughput, duration, sent.Load(), missed, failed.Load(), got, res.P50ms, res.P99ms, pct(recv, 50), pct(recv, 99), res.ServerRSSKiB, res.ServerCPUs)
	if firstErr != nil {
		return res, fmt.Errorf("%d requests failed, first: %w\n%s", failed.Load(), firstErr, res.Summary)
	}
	if got < sent.Load() {
		return res, fmt.Errorf("%w: %d of %d\n%s", errIncomplete, got, sent.Load(), res.Summary)
	}
	return res, nil
}
