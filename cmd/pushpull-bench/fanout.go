package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// errIncomplete reports a run in which not every event arrived in time.
var errIncomplete = errors.New("not every event arrived")

// eventBody is one POST /events body with n shared (or, with user set,
// single-user) events stamped with the current time.
func eventBody(n int, user string) []byte {
	b := make([]byte, 0, 32+n*120)
	b = append(b, `{"events":[`...)
	for i := range n {
		if i > 0 {
			b = append(b, ',')
		}
		if user == "" {
			b = append(b, `{"shared":true`...)
		} else {
			b = append(b, `{"users":[`...)
			b = strconv.AppendQuote(b, user)
			b = append(b, ']')
		}
		b = append(b, `,"module_id":"bench","command":"tick","params":{"`+stampKey+`":`...)
		b = strconv.AppendInt(b, time.Now().UnixNano(), 10)
		b = append(b, `}}`...)
	}
	return append(b, `]}`...)
}

func runFanout(ctx context.Context, env *runEnv, args []string) (*result, error) {
	fs := flag.NewFlagSet("fanout", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	clients := fs.Int("clients", 1000, "WebSocket clients, one user each")
	events := fs.Int("events", 200, "events published to shared")
	batch := fs.Int("batch", 1, "events per POST /events request")
	publishers := fs.Int("publishers", 2, "concurrent publishing callers")
	dialers := fs.Int("dialers", 16, "concurrent WebSocket dials while connecting")
	nodeCount := clusterFlag(fs)
	publishAll := fs.Bool("publish-all", false, "with -cluster: round-robin the publish requests over the nodes (default: all through the first)")
	resolve := commonFlags(fs, env)
	if err := parse(ctx, fs, args, resolve); err != nil {
		return nil, err
	}
	if *clients < 1 || *events < 1 || *batch < 1 || *publishers < 1 || *dialers < 1 {
		return nil, fmt.Errorf("%w: -clients, -events, -batch, -publishers and -dialers must be ≥ 1", errUsage)
	}
	g, err := env.startNodes(ctx, *nodeCount)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	pubs := g.list[:1]
	if *publishAll {
		pubs = g.list
	}

	f := newFleet(ctx, *clients)
	defer f.close()
	t0 := time.Now()
	// Clients round robin over the nodes (all on the one server without -cluster).
	if err := f.connectSpread(g.list, *clients, *dialers, func(i int) string { return "u" + strconv.Itoa(i) }); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	connectTime := time.Since(t0)

	total := int64(*clients) * int64(*events)
	f.expect(total)
	before, err := g.proc()
	if err != nil {
		return nil, err
	}
	prof, err := g.startPerf(env)
	if err != nil {
		return nil, err
	}
	defer prof.stop()
	benchBefore := selfCPU()
	start := time.Now()
	if err := publishSpread(ctx, pubs, *events, *batch, *publishers, ""); err != nil {
		return nil, err
	}
	publishTime := time.Since(start)
	timedOut := false
	select {
	case <-f.done:
	case <-time.After(env.timeout):
		timedOut = true
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	prof.stop()
	end := time.Unix(0, f.lastRecv.Load())
	res := &result{Unit: "events/s"}
	got := f.received.Load()
	f.close()
	lat := f.latencies()
	res.setLatency(lat)
	elapsed := end.Sub(start)
	if elapsed > 0 {
		res.Throughput = float64(got) / elapsed.Seconds()
	}
	res.Params = map[string]any{"clients": *clients, "events": *events, "batch": *batch, "publishers": *publishers, "cluster": g.size()}
	if g.size() > 0 {
		res.Params["publish_all"] = *publishAll
	}
	res.Extra = map[string]any{
		"delivered": got, "expected": total, "closed_by_server": f.closed.Load(),
		"publish_seconds": publishTime.Seconds(), "elapsed_seconds": elapsed.Seconds(),
		"connect_seconds": connectTime.Seconds(),
		"frames":          f.frames.Load(), "events_per_frame": float64(got) / float64(max(1, f.frames.Load())),
	}
	res.setNodes(g, before)
	res.setBenchCPU(g, benchBefore)
	where := ""
	if g.size() > 0 {
		where = fmt.Sprintf(" (%d nodes, summed)", g.size())
	}
	res.Summary = fmt.Sprintf("fanout: %d clients × %d events: %d/%d delivered in %.3fs = %.0f events/s; publish→receive p50 %.2f ms p90 %.2f ms p99 %.2f ms; %.1f events per frame; server%s RSS %d KiB, CPU %.2fs",
		*clients, *events, got, total, elapsed.Seconds(), res.Throughput, res.P50ms, res.P90ms, res.P99ms, res.Extra["events_per_frame"], where, res.ServerRSSKiB, res.ServerCPUs)
	if timedOut || got < total {
		return res, fmt.Errorf("%w: %d of %d (closed by server: %d)\n%s", errIncomplete, got, total, f.closed.Load(), res.Summary)
	}
	return res, nil
}

// publishSpread posts events in requests of batch from par callers, to
// shared (user empty) or to one user; request k goes to nodes[k mod
// len(nodes)].
func publishSpread(ctx context.Context, nodes []*server, events, batch, par int, user string) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				lo := int(next.Add(int64(batch))) - batch
				if lo >= events || ctx.Err() != nil {
					return
				}
				n := min(batch, events-lo)
				s := nodes[(lo/batch)%len(nodes)]
				st, body, err := s.post(ctx, "/api/v1/events", eventBody(n, user))
				if err == nil && st != http.StatusAccepted {
					err = fmt.Errorf("POST /api/v1/events: %d %.300s", st, body)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}
