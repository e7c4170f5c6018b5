package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"
)

// runRecovery queues jobs while the provider answers 503, kills the server
// with SIGKILL, restarts it on the same data directory with the provider
// up, and measures how long until pushes flow again and whether every
// accepted job arrived at least once.
func runRecovery(ctx context.Context, env *runEnv, args []string) (*result, error) {
	fs := flag.NewFlagSet("recovery", flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var d deliverFlags
	d.register(fs, 100000)
	platform := fs.String("platform", "apns", "provider that is down: apns or fcm")
	resolve := commonFlags(fs, env)
	if err := parse(ctx, fs, args, resolve); err != nil {
		return nil, err
	}
	if err := d.check(); err != nil {
		return nil, err
	}
	dir, err := newRunDir(env)
	if err != nil {
		return nil, err
	}
	// Every request is recorded: the ids of the delivered pushes are how
	// lost jobs are counted.
	p, err := newProvider(*platform, dir, true)
	if err != nil {
		return nil, err
	}
	defer p.close()
	p.down(true)
	s, err := env.start(ctx, p.serverEnv()...)
	if err != nil {
		return nil, err
	}
	defer s.stop()
	if err := registerDevices(ctx, s, p, d.devices, 16); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, env.timeout)
	defer cancel()
	t0 := time.Now()
	sends, err := enqueue(ctx, s, pushUsersBodies(d.jobs, d.batch, d.devices, 0), d.conc)
	if err != nil {
		return nil, err
	}
	enqTime := time.Since(t0)
	accepted := 0
	for _, sd := range sends {
		accepted += sd.jobs
	}
	failedWhileDown := p.requests()
	if p.delivered() != 0 {
		return nil, fmt.Errorf("%d pushes delivered while the provider was down", p.delivered())
	}

	s.kill()
	p.down(false)
	restart := time.Now()
	if err := s.restart(); err != nil {
		return nil, err
	}
	// From here the clock runs: the profile covers start-up and draining.
	prof, err := startPerf(env, s)
	if err != nil {
		return nil, err
	}
	defer prof.stop()
	smp := startSampler(ctx, p.delivered, int64(accepted))
	if err := s.waitReady(ctx, 30*time.Second); err != nil {
		smp.stop()
		return nil, fmt.Errorf("restart: %w\n%s", err, s.logTail())
	}
	ready := time.Since(restart)
	before, err := s.proc()
	if err != nil {
		smp.stop()
		return nil, err
	}
	smp.wait()
	prof.stop()
	res := &result{Unit: "jobs/s drained after restart"}
	res.setServer(s, before)
	arrivals := smp.arrivals(0)
	var first, last time.Duration = -1, -1
	if len(arrivals) > 0 {
		first, last = arrivals[0].Sub(restart), arrivals[len(arrivals)-1].Sub(restart)
		res.Throughput = float64(len(arrivals)) / last.Seconds()
	}
	// The sampler stops at as many deliveries as jobs accepted, and
	// duplicates (at-least-once: a send that outlived its lease) count
	// among them: give the jobs they stood in for the time to arrive
	// before calling anything lost.
	count := func() (lost, dups int) {
		ids := p.ids()
		for i := range d.jobs {
			switch n := ids[strconv.Itoa(i)].n; {
			case n == 0:
				lost++
			case n > 1:
				dups += n - 1
			}
		}
		return lost, dups
	}
	lost, dups := count()
	for deadline := time.Now().Add(30 * time.Second); lost > 0 && time.Now().Before(deadline); lost, dups = count() {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	res.Params = map[string]any{"platform": *platform, "devices": d.devices, "jobs": d.jobs, "batch": d.batch, "concurrency": d.conc}
	res.Extra = map[string]any{
		"accepted": accepted, "enqueue_seconds": enqTime.Seconds(), "failed_attempts_while_down": failedWhileDown,
		"ready_seconds": ready.Seconds(), "first_delivery_seconds": first.Seconds(), "all_delivered_seconds": last.Seconds(),
		"delivered": len(arrivals), "lost": lost, "duplicates": dups,
	}
	res.Summary = fmt.Sprintf("recovery: %d jobs accepted in %.1fs with %s down (%d failed attempts), SIGKILL, restart: ready in %.2fs, first delivery after %.2fs, all after %.2fs (%.0f jobs/s); lost %d, duplicates %d; server RSS %d KiB, CPU %.2fs",
		accepted, enqTime.Seconds(), *platform, failedWhileDown, ready.Seconds(), first.Seconds(), last.Seconds(), res.Throughput, lost, dups, res.ServerRSSKiB, res.ServerCPUs)
	if lost > 0 {
		return res, fmt.Errorf("%w: %d accepted jobs lost\n%s", errIncomplete, lost, res.Summary)
	}
	return res, nil
}
