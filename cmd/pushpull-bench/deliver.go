package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

func runDeliverAPNs(ctx context.Context, env *runEnv, args []string) (*result, error) {
	return runDeliver(ctx, env, "apns", args)
}

func runDeliverFCM(ctx context.Context, env *runEnv, args []string) (*result, error) {
	return runDeliver(ctx, env, "fcm", args)
}

// deliverFlags are the parameters deliver-* and recovery share.
type deliverFlags struct {
	devices, jobs, batch, conc int
}

func (d *deliverFlags) register(fs *flag.FlagSet, jobs int) {
	fs.IntVar(&d.devices, "devices", 1000, "registered devices, one user each")
	fs.IntVar(&d.jobs, "jobs", jobs, "pushes to enqueue (one notification to one user = one job)")
	fs.IntVar(&d.batch, "batch", 100, "notifications per POST /push request")
	fs.IntVar(&d.conc, "concurrency", 8, "concurrent POST /push callers")
}

func (d *deliverFlags) check() error {
	if d.devices < 1 || d.jobs < 1 || d.batch < 1 || d.conc < 1 {
		return fmt.Errorf("%w: -devices, -jobs, -batch and -concurrency must be ≥ 1", errUsage)
	}
	return nil
}

func runDeliver(ctx context.Context, env *runEnv, platform string, args []string) (*result, error) {
	fs := flag.NewFlagSet("deliver-"+platform, flag.ContinueOnError)
	fs.SetOutput(env.stderr)
	var d deliverFlags
	d.register(fs, 50000)
	verify := fs.Bool("verify", false, "record every push at the fake and check each job arrived once (costs generator CPU)")
	nodeCount := clusterFlag(fs)
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
	p, err := newProvider(platform, dir, *verify)
	if err != nil {
		return nil, err
	}
	defer p.close()
	g, err := env.startNodes(ctx, *nodeCount, p.serverEnv()...)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	// Registration and pushes go through the first node; clustered, the
	// registry and the queue are shared and every node dispatches.
	s := g.first()
	if err := registerDevices(ctx, s, p, d.devices, 16); err != nil {
		return nil, err
	}
	// Pushes before the clock starts: the HTTP/2 connection, the provider
	// token and the OAuth token exist in a server that has been running.
	warm, err := warmUp(ctx, g, p, d.devices)
	if err != nil {
		return nil, err
	}
	base := p.delivered()
	bodies := pushUsersBodies(d.jobs, d.batch, d.devices, 0)

	ctx, cancel := context.WithTimeout(ctx, env.timeout)
	defer cancel()
	before, err := g.proc()
	if err != nil {
		return nil, err
	}
	nodesBefore := g.delivered(ctx)
	prof, err := g.startPerf(env)
	if err != nil {
		return nil, err
	}
	defer prof.stop()
	benchBefore := selfCPU()
	smp := startSampler(ctx, p.delivered, base+int64(d.jobs))
	t0 := time.Now()
	sends, err := enqueue(ctx, s, bodies, d.conc)
	enqTime := time.Since(t0)
	if err != nil {
		smp.stop()
		return nil, err
	}
	smp.wait()
	prof.stop()
	res := &result{Unit: "jobs/s"}
	arrivals := smp.arrivals(base)
	accepted := 0
	for _, sd := range sends {
		accepted += sd.jobs
	}
	lat := ordinalLatency(sends, arrivals)
	res.setLatency(lat)
	var last time.Time
	if n := len(arrivals); n > 0 {
		last = arrivals[n-1]
	}
	elapsed := last.Sub(t0)
	if len(arrivals) > 0 {
		res.Throughput = float64(len(arrivals)) / elapsed.Seconds()
	}
	res.Params = map[string]any{"devices": d.devices, "jobs": d.jobs, "batch": d.batch, "concurrency": d.conc, "verify": *verify, "cluster": g.size()}
	res.Extra = map[string]any{
		"accepted": accepted, "delivered": len(arrivals), "provider_requests": p.requests(),
		"enqueue_seconds": enqTime.Seconds(), "enqueue_jobs_per_second": float64(accepted) / enqTime.Seconds(),
		"elapsed_seconds": elapsed.Seconds(), "latency": "ordinal: k-th accepted job vs k-th delivery at the fake (exact when FIFO)",
	}
	res.setNodes(g, before)
	res.setBenchCPU(g, benchBefore)
	where := ""
	if g.size() > 0 {
		// Which node sent how many. The counters move when a node settles
		// its jobs, just after the fake has them: wait for the last ones.
		split := make([]int64, len(g.list))
		_ = waitFor(ctx, 10*time.Second, func() bool {
			after := g.delivered(ctx)
			for i := range after {
				split[i] = after[i] - nodesBefore[i]
			}
			return sum(split) >= int64(len(arrivals))
		})
		res.Extra["node_delivered"] = split
		res.Extra["warm_up_pushes"] = warm
		where = fmt.Sprintf(" (%d nodes, summed; sent per node %v)", g.size(), split)
	}
	summarize := func() {
		res.Summary = fmt.Sprintf("deliver-%s: %d devices, %d jobs (%d per request, %d callers): delivered %d in %.2fs = %.0f jobs/s (enqueue %.0f jobs/s); enqueue→delivery p50 %.1f ms p90 %.1f ms p99 %.1f ms; server%s RSS %d KiB, CPU %.2fs",
			platform, d.devices, d.jobs, d.batch, d.conc, len(arrivals), elapsed.Seconds(), res.Throughput,
			float64(accepted)/enqTime.Seconds(), res.P50ms, res.P90ms, res.P99ms, where, res.ServerRSSKiB, res.ServerCPUs)
	}
	summarize()
	if len(arrivals) < accepted {
		return res, fmt.Errorf("%w: %d of %d jobs delivered\n%s", errIncomplete, len(arrivals), accepted, res.Summary)
	}
	if *verify {
		// The fake recorded when each job arrived: exact per-job latency
		// from the send of the request that carried it.
		ids := p.ids()
		sentAt := make([]time.Time, len(bodies))
		for _, sd := range sends {
			sentAt[sd.idx] = sd.at
		}
		lost, dups := 0, 0
		var exact []int64
		for i := range d.jobs {
			a := ids[strconv.Itoa(i)]
			if a.n == 0 {
				lost++
				continue
			}
			dups += a.n - 1
			if !a.first.IsZero() {
				exact = append(exact, max(0, int64(a.first.Sub(sentAt[i/d.batch]))))
			}
		}
		if len(exact) == d.jobs {
			res.setLatency(exact)
			res.Extra["latency"] = "per job: send of its POST /push → accepted at the fake"
			summarize()
		}
		// Duplicates seen until now: a job sent twice (two leases of it)
		// would count here unless its second send comes after this check.
		res.Extra["lost"], res.Extra["duplicates"] = lost, dups
		if lost > 0 {
			return res, fmt.Errorf("%w: %d accepted jobs never arrived\n%s", errIncomplete, lost, res.Summary)
		}
	}
	return res, nil
}

// newRunDir makes a directory for one run's provider files.
func newRunDir(env *runEnv) (string, error) {
	return os.MkdirTemp(env.tmp, "fake-")
}

// registerDevices registers device i for user "u<i>" with par callers.
func registerDevices(ctx context.Context, s *server, p *provider, n, par int) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, par)
	for range par {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				body, _ := json.Marshal(map[string]any{
					"user": "u" + strconv.Itoa(i), "platform": p.platform, "token": p.token(i), "app_id": p.appID,
				})
				st, out, err := s.post(ctx, "/api/v1/devices", body)
				if err == nil && st != http.StatusCreated && st != http.StatusOK {
					err = fmt.Errorf("POST /api/v1/devices: %d %.300s", st, out)
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
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// pushUsersBodies builds POST /push bodies for jobs notifications, batch per
// body; notification k goes to user u<k mod users> and carries data
// {"bid": "k"} so the fake can tell jobs apart. A negative bidBase marks
// warm-up pushes ("w<k>").
func pushUsersBodies(jobs, batch, users, bidBase int) [][]byte {
	var out [][]byte
	for start := 0; start < jobs; start += batch {
		n := min(batch, jobs-start)
		b := make([]byte, 0, 32+n*120)
		b = append(b, `{"notifications":[`...)
		for i := range n {
			k := start + i
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"users":["u`...)
			b = strconv.AppendInt(b, int64(k%users), 10)
			b = append(b, `"],"title":"Bench","body":"hello from pushpull-bench","data":{"bid":"`...)
			if bidBase < 0 {
				b = append(b, 'w')
			}
			b = strconv.AppendInt(b, int64(k), 10)
			b = append(b, `"}}`...)
		}
		out = append(out, append(b, `]}`...))
	}
	return out
}

// sent is one accepted POST /push: when it was sent and how many jobs the
// answer reported.
type sent struct {
	at   time.Time
	jobs int
	idx  int // index of the body in the slice given to enqueue
}

// enqueue posts bodies with conc callers and returns one record per request.
// It stops at the first failure.
func enqueue(ctx context.Context, s *server, bodies [][]byte, conc int) ([]sent, error) {
	var next atomic.Int64
	out := make([][]sent, conc)
	errs := make(chan error, conc)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(bodies) || ctx.Err() != nil {
					return
				}
				t := time.Now()
				st, ans, err := s.post(ctx, "/api/v1/push", bodies[i])
				if err == nil && st != http.StatusAccepted {
					err = fmt.Errorf("POST /api/v1/push: %d %.300s", st, ans)
				}
				var a pushAnswer
				if err == nil {
					err = json.Unmarshal(ans, &a)
				}
				if err != nil {
					errs <- err
					cancel()
					return
				}
				n := 0
				for _, r := range a.Results {
					n += r.Jobs
				}
				out[w] = append(out[w], sent{at: t, jobs: n, idx: i})
			}
		}()
	}
	wg.Wait()
	close(errs)
	var all []sent
	for _, o := range out {
		all = append(all, o...)
	}
	slices.SortFunc(all, func(a, b sent) int { return a.at.Compare(b.at) })
	if err := <-errs; err != nil {
		return all, err
	}
	return all, nil
}

// ordinalLatency pairs the k-th accepted job (in send order) with the k-th
// delivery and returns the differences in ns. The fake counts deliveries
// without timestamps per job, so this is exact when the queue delivers in
// order (it leases oldest first) and an estimate of the distribution
// otherwise.
func ordinalLatency(sends []sent, arrivals []time.Time) []int64 {
	var out []int64
	k := 0
	for _, s := range sends {
		for range s.jobs {
			if k >= len(arrivals) {
				return out
			}
			out = append(out, max(0, int64(arrivals[k].Sub(s.at))))
			k++
		}
	}
	return out
}

// sampler polls a delivery counter every millisecond and remembers when it
// moved, so the arrival time of the k-th delivery is known to 1 ms.
type sampler struct {
	cancel context.CancelFunc
	done   chan struct{}
	at     []time.Time
	counts []int64
}

func startSampler(ctx context.Context, count func() int64, target int64) *sampler {
	ctx, cancel := context.WithCancel(ctx)
	s := &sampler{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		last := int64(-1)
		for {
			c := count()
			if c != last {
				s.at, s.counts = append(s.at, time.Now()), append(s.counts, c)
				last = c
			}
			if c >= target {
				return
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// wait returns when the target was reached or the context ended.
func (s *sampler) wait() { <-s.done }

// stop ends sampling and waits for the goroutine.
func (s *sampler) stop() { s.cancel(); <-s.done }

// arrivals expands the samples into one time per delivery after base.
func (s *sampler) arrivals(base int64) []time.Time {
	var out []time.Time
	prev := base
	for i, c := range s.counts {
		for ; prev < c; prev++ {
			out = append(out, s.at[i])
		}
	}
	return out
}

// waitCount polls count until it reaches n or within passes.
func waitCount(ctx context.Context, count func() int64, n int64, within time.Duration) error {
	deadline := time.Now().Add(within)
	for count() < n {
		if time.Now().After(deadline) {
			return fmt.Errorf("count %d, want %d after %s", count(), n, within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond): // poll interval
		}
	}
	return nil
}
