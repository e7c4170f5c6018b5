package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"
)

func runIdleMemory(ctx context.Context, env *runEnv, args []string) (*result, error) {
	fs := flag.NewFlagSet("idle-memory", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	clients := fs.Int("clients", 10000, "idle WebSocket connections, one user each")
	dialers := fs.Int("dialers", 16, "concurrent WebSocket dials while connecting")
	settle := fs.Duration("settle", 2*time.Second, "pause after connecting before reading RSS")
	polls := fs.Int("polls", 0, "long polls to hold after the WebSockets (GET /sub/poll?wait=60), measured separately")
	resolve := commonFlags(fs, env)
	if err := parse(ctx, fs, args, resolve); err != nil {
		return nil, err
	}
	if *clients < 0 || *polls < 0 || *clients+*polls < 1 || *dialers < 1 {
		return nil, fmt.Errorf("%w: -clients and -polls must be ≥ 0 (one of them > 0), -dialers ≥ 1", errUsage)
	}
	s, err := env.start(ctx)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	f := newFleet(ctx, *clients)
	defer f.close()

	// Warm the listener with one connection so lazily built state (TLS-less
	// here, but pools, the hub's shards) is in the baseline, not the slope.
	if err := f.connect(s, 1, 1, func(int) string { return "warm" }); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	before, err := s.proc()
	if err != nil {
		return nil, err
	}
	goBefore := s.goStats(ctx)
	t0 := time.Now()
	if err := f.connect(s, *clients, *dialers, func(i int) string { return "u" + strconv.Itoa(i) }); err != nil {
		return nil, fmt.Errorf("connect: %w", err)
	}
	connectTime := time.Since(t0)
	select {
	case <-time.After(*settle): // let the server finish per-connection setup
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	after, err := s.proc()
	if err != nil {
		return nil, err
	}
	goAfter := s.goStats(ctx)
	closed := f.closed.Load()
	perConnGo := func(k string) float64 { return (goAfter[k] - goBefore[k]) / float64(max(1, *clients)) }
	perConn := float64(after.RSSKiB-before.RSSKiB) / float64(max(1, *clients))
	res := &result{Unit: "KiB/connection", Throughput: perConn, ServerRSSKiB: after.RSSKiB, ServerCPUs: (after.CPU - before.CPU).Seconds()}
	res.Params = map[string]any{"clients": *clients, "settle": settle.String()}
	res.Extra = map[string]any{
		"rss_before_kib": before.RSSKiB, "rss_after_kib": after.RSSKiB,
		"connect_seconds": connectTime.Seconds(), "closed_by_server": closed,
		"connects_per_second":      float64(*clients) / connectTime.Seconds(),
		"heap_inuse_kib_per_conn":  perConnGo("go_memstats_heap_inuse_bytes") / 1024,
		"stack_inuse_kib_per_conn": perConnGo("go_memstats_stack_inuse_bytes") / 1024,
		"goroutines_per_conn":      perConnGo("go_goroutines"),
	}
	res.Summary = fmt.Sprintf("idle-memory: %d connections: server RSS %d → %d KiB = %.1f KiB per connection (Go heap %.1f KiB, stacks %.1f KiB, %.1f goroutines per connection; connected in %.1fs; %d closed by server)",
		*clients, before.RSSKiB, after.RSSKiB, perConn, res.Extra["heap_inuse_kib_per_conn"], res.Extra["stack_inuse_kib_per_conn"],
		res.Extra["goroutines_per_conn"], connectTime.Seconds(), closed)
	if closed > 0 {
		return res, fmt.Errorf("%d connections closed by the server\n%s", closed, res.Summary)
	}
	if *polls == 0 {
		return res, nil
	}
	// Held long polls, on top of the WebSockets: their own slope.
	ps, err := holdPolls(ctx, f, s, *polls, *clients, time.Minute)
	if err != nil {
		return res, fmt.Errorf("long polls: %w\n%s", err, res.Summary)
	}
	defer ps.close()
	select {
	case <-time.After(*settle): // let the server finish per-poll setup
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	afterPolls, err := s.proc()
	if err != nil {
		return nil, err
	}
	goPolls := s.goStats(ctx)
	perPoll := float64(afterPolls.RSSKiB-after.RSSKiB) / float64(*polls)
	perPollGo := func(k string) float64 { return (goPolls[k] - goAfter[k]) / float64(*polls) }
	res.ServerRSSKiB = afterPolls.RSSKiB
	res.Params["polls"] = *polls
	res.Extra["poll_kib"] = perPoll
	res.Extra["poll_heap_inuse_kib"] = perPollGo("go_memstats_heap_inuse_bytes") / 1024
	res.Extra["poll_stack_inuse_kib"] = perPollGo("go_memstats_stack_inuse_bytes") / 1024
	res.Extra["poll_goroutines"] = perPollGo("go_goroutines")
	res.Summary += fmt.Sprintf("; %d held long polls: RSS → %d KiB = %.1f KiB per poll (Go heap %.1f KiB, stacks %.1f KiB, %.1f goroutines per poll)",
		*polls, afterPolls.RSSKiB, perPoll, res.Extra["poll_heap_inuse_kib"], res.Extra["poll_stack_inuse_kib"], res.Extra["poll_goroutines"])
	if n := ps.failed.Load(); n > 0 {
		return res, fmt.Errorf("%d long polls ended early\n%s", n, res.Summary)
	}
	return res, nil
}
