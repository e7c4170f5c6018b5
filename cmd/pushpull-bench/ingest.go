package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// pushBody is a POST /push body of n notifications, each to one FCM device
// given directly, so no registry lookup is involved.
func pushBody(n, seq int) []byte {
	b := make([]byte, 0, 32+n*160)
	b = append(b, `{"notifications":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"devices":[{"platform":"fcm","token":"bench-`...)
		b = strconv.AppendInt(b, int64(seq), 10)
		b = append(b, '-')
		b = strconv.AppendInt(b, int64(i), 10)
		b = append(b, `"}],"title":"Bench","body":"hello from pushpull-bench"}`...)
	}
	return append(b, `]}`...)
}

// pushAnswer is the part of the 202 answer the ingest scenario checks.
type pushAnswer struct {
	Results []struct {
		Jobs int `json:"jobs"`
	} `json:"results"`
}

func runIngest(ctx context.Context, env *runEnv, args []string) (*result, error) {
	fs := flag.NewFlagSet("ingest", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	requests := fs.Int("requests", 2000, "POST /push requests to send")
	batch := fs.Int("batch", 100, "notifications per request, one device each")
	conc := fs.Int("concurrency", 32, "concurrent callers")
	resolve := commonFlags(fs, env)
	if err := parse(ctx, fs, args, resolve); err != nil {
		return nil, err
	}
	if *requests < 1 || *batch < 1 || *conc < 1 {
		return nil, fmt.Errorf("%w: -requests, -batch and -concurrency must be ≥ 1", errUsage)
	}
	s, err := env.start(ctx)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	// Bodies are built before the clock starts so the generator's own
	// encoding does not count against the server.
	bodies := make([][]byte, *requests)
	for i := range bodies {
		bodies[i] = pushBody(*batch, i)
	}
	ctx, cancel := context.WithTimeout(ctx, env.timeout)
	defer cancel()
	before, err := s.proc()
	if err != nil {
		return nil, err
	}
	prof, err := startPerf(env, s)
	if err != nil {
		return nil, err
	}
	defer prof.stop()
	var next, jobs atomic.Int64
	lat := make([][]int64, *conc)
	errs := make(chan error, *conc)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range *conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= *requests || ctx.Err() != nil {
					return
				}
				t := time.Now()
				st, out, err := s.post(ctx, "/api/v1/push", bodies[i])
				d := time.Since(t)
				if err == nil && st != http.StatusAccepted {
					err = fmt.Errorf("POST /api/v1/push: %d %.300s", st, out)
				}
				var a pushAnswer
				if err == nil {
					err = json.Unmarshal(out, &a)
				}
				if err != nil {
					errs <- err
					return
				}
				n := 0
				for _, r := range a.Results {
					n += r.Jobs
				}
				jobs.Add(int64(n))
				lat[w] = append(lat[w], int64(d))
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	prof.stop()
	close(errs)
	res := &result{Unit: "jobs/s"}
	res.setServer(s, before)
	var all []int64
	for _, l := range lat {
		all = append(all, l...)
	}
	res.setLatency(all)
	res.Throughput = float64(jobs.Load()) / elapsed.Seconds()
	res.Params = map[string]any{"requests": *requests, "batch": *batch, "concurrency": *conc}
	res.Extra = map[string]any{"jobs": jobs.Load(), "elapsed_seconds": elapsed.Seconds()}
	res.Summary = fmt.Sprintf("ingest: %d requests × %d notifications from %d callers: %d jobs in %.2fs = %.0f jobs/s; request p50 %.2f ms p90 %.2f ms p99 %.2f ms; server RSS %d KiB, CPU %.2fs",
		len(all), *batch, *conc, jobs.Load(), elapsed.Seconds(), res.Throughput, res.P50ms, res.P90ms, res.P99ms, res.ServerRSSKiB, res.ServerCPUs)
	if err := <-errs; err != nil {
		return res, fmt.Errorf("%w\n%s", err, res.Summary)
	}
	if want := int64(*requests) * int64(*batch); jobs.Load() != want {
		return res, fmt.Errorf("%w: %d jobs accepted, want %d\n%s", errIncomplete, jobs.Load(), want, res.Summary)
	}
	return res, nil
}
