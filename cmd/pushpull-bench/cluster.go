package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	natsserver "github.com/nats-io/nats-server/v2/server"
)

// errClusterTarget is returned when -cluster and -target are both given:
// a cluster is started by the bench, a target is not.
var errClusterTarget = errors.New("-cluster starts its own nodes and nats-server; it cannot be combined with -target")

// clusterFlag registers -cluster on the scenarios that support it.
func clusterFlag(fs *flag.FlagSet) *int {
	return fs.Int("cluster", 0, "run `N` pushpull nodes in cluster mode on an embedded nats-server with JetStream (0: one node on bbolt)")
}

// nodes is what a scenario runs against: one server (embedded mode, or
// the -target instance) or, with -cluster N, N server processes sharing
// an embedded nats-server that runs in this process. stop ends all of it.
type nodes struct {
	list []*server
	ns   *natsserver.Server // nil unless clustered

	stopOnce sync.Once
}

// startNodes starts what the scenario measures: e.start's single server
// when n is 0, else a cluster of n nodes. Every node gets extraEnv and the
// -env settings, and all share one API key and JWT secret, so a client
// token or an API call is valid on any node.
func (e *runEnv) startNodes(ctx context.Context, n int, extraEnv ...string) (*nodes, error) {
	switch {
	case n < 0:
		return nil, errors.New("-cluster must be ≥ 0")
	case n == 0:
		s, err := e.start(ctx, extraEnv...)
		if err != nil {
			return nil, err
		}
		return &nodes{list: []*server{s}}, nil
	case e.remote != nil:
		return nil, errClusterTarget
	}
	dir, err := os.MkdirTemp(e.tmp, "cluster-")
	if err != nil {
		return nil, err
	}
	ns, err := startNATS(filepath.Join(dir, "nats"))
	if err != nil {
		return nil, err
	}
	g := &nodes{ns: ns}
	cred := newCredentials()
	// One at a time: the first node creates the streams and buckets, the
	// others find them (as in cmd/pushpull's cluster tests).
	for i := range n {
		id := "n" + strconv.Itoa(i+1)
		nd, err := os.MkdirTemp(dir, id+"-")
		if err != nil {
			g.stop()
			return nil, err
		}
		env := append([]string{
			"PUSHPULL_CLUSTER_ENGINE=nats",
			"PUSHPULL_CLUSTER_NATS_URL=" + ns.ClientURL(),
			"PUSHPULL_CLUSTER_NODE_ID=" + id,
		}, extraEnv...)
		s, err := startServerWith(ctx, e.bin, nd, append(env, e.serverEnv...), cred)
		if err != nil {
			g.stop()
			return nil, fmt.Errorf("node %s: %w", id, err)
		}
		g.list = append(g.list, s)
	}
	return g, nil
}

// startNATS runs a loopback nats-server with JetStream stored under dir.
func startNATS(dir string) (*natsserver.Server, error) {
	ns, err := natsserver.NewServer(&natsserver.Options{
		Host: "127.0.0.1", Port: natsserver.RANDOM_PORT,
		JetStream: true, StoreDir: dir, NoLog: true, NoSigs: true,
	})
	if err != nil {
		return nil, fmt.Errorf("nats-server: %w", err)
	}
	ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		ns.Shutdown()
		ns.WaitForShutdown()
		return nil, errors.New("nats-server not ready within 10s")
	}
	return ns, nil
}

// first is the node the API calls go to unless spread.
func (g *nodes) first() *server { return g.list[0] }

// size is the -cluster value: 0 for a single server.
func (g *nodes) size() int {
	if g.ns == nil {
		return 0
	}
	return len(g.list)
}

// stop ends the servers (together: each may take its shutdown grace), then
// the nats-server they used. Safe to call twice.
func (g *nodes) stop() {
	g.stopOnce.Do(func() {
		var wg sync.WaitGroup
		for _, s := range g.list {
			wg.Add(1)
			go func() { defer wg.Done(); s.stop() }()
		}
		wg.Wait()
		if g.ns != nil {
			g.ns.Shutdown()
			g.ns.WaitForShutdown()
		}
	})
}

// proc reads every node's RSS and CPU.
func (g *nodes) proc() ([]procStats, error) {
	out := make([]procStats, len(g.list))
	for i, s := range g.list {
		st, err := s.proc()
		if err != nil {
			return nil, fmt.Errorf("node %d: %w", i+1, err)
		}
		out[i] = st
	}
	return out, nil
}

// logTail is every node's log tail.
func (g *nodes) logTail() string {
	var b strings.Builder
	for i, s := range g.list {
		if len(g.list) > 1 {
			fmt.Fprintf(&b, "node n%d ", i+1)
		}
		b.WriteString(s.logTail())
		b.WriteByte('\n')
	}
	return b.String()
}

// startPerf profiles the nodes and, clustered, this process too: it runs
// the nats-server (and the load generator and fakes, which perf report
// --sort comm,symbol cannot separate from it by process).
func (g *nodes) startPerf(env *runEnv) (*profiler, error) {
	if env.perfOut == "" {
		return nil, nil
	}
	if g.ns == nil {
		return startPerf(env, g.first())
	}
	pids := []int{os.Getpid()}
	for _, s := range g.list {
		pids = append(pids, s.cmd.Process.Pid)
	}
	return startPerfPIDs(env, pids)
}

// setNodes records RSS and CPU (since before) summed over the nodes, and
// per node when clustered. Call after r.Extra is set.
func (r *result) setNodes(g *nodes, before []procStats) {
	if g.ns == nil {
		r.setServer(g.first(), before[0])
		return
	}
	now, err := g.proc()
	if err != nil {
		return
	}
	rss := make([]int64, len(now))
	cpu := make([]float64, len(now))
	for i := range now {
		rss[i] = now[i].RSSKiB
		cpu[i] = (now[i].CPU - before[i].CPU).Seconds()
		r.ServerRSSKiB += rss[i]
		r.ServerCPUs += cpu[i]
	}
	if r.Extra == nil {
		r.Extra = map[string]any{}
	}
	r.Extra["node_rss_kib"] = rss
	r.Extra["node_cpu_seconds"] = cpu
}

// setBenchCPU records this process's CPU in the measured phase: clients
// and fakes, and clustered the nats-server as well.
func (r *result) setBenchCPU(g *nodes, before time.Duration) {
	r.Extra["bench_cpu_seconds"] = (selfCPU() - before).Seconds()
	if g.ns != nil {
		r.Extra["bench_cpu_includes_nats"] = true
	}
}

// metricSum adds up the samples of the metric name on s's /metrics whose
// labels contain every one of labels (e.g. `result="delivered"`).
func (s *server) metricSum(ctx context.Context, name string, labels ...string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET /metrics: %d", resp.StatusCode)
	}
	var sum float64
lines:
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, name)
		if !ok || (rest != "" && rest[0] != '{' && rest[0] != ' ') {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(rest, l) {
				continue lines
			}
		}
		f := strings.Fields(rest[strings.LastIndexByte(rest, '}')+1:])
		if len(f) == 0 {
			continue
		}
		if v, err := strconv.ParseFloat(f[0], 64); err == nil {
			sum += v
		}
	}
	return sum, nil
}

// delivered is, per node, how many pushes it reported delivered
// (pushpull_pushes_total{result="delivered"}); -1 where unreadable.
func (g *nodes) delivered(ctx context.Context) []int64 {
	out := make([]int64, len(g.list))
	for i, s := range g.list {
		v, err := s.metricSum(ctx, "pushpull_pushes_total", `result="delivered"`)
		if err != nil {
			out[i] = -1
			continue
		}
		out[i] = int64(v)
	}
	return out
}

// warmUpRounds bounds warmUp: a node that has not sent one push after
// this many rounds is not taking jobs from the shared queue.
const warmUpRounds = 100

// warmUp sends pushes before the measured phase until every node has
// delivered at least one (rounds of one push per node), so each has its
// provider connection and token, and returns how many it sent. Clustered,
// a node that never sends is an error: it is not sharing the queue.
func warmUp(ctx context.Context, g *nodes, p *provider, users int) (int, error) {
	sent := 0
	for round := 1; ; round++ {
		n := len(g.list)
		if _, err := enqueue(ctx, g.first(), pushUsersBodies(n, n, users, -1), 1); err != nil {
			return sent, fmt.Errorf("warm-up: %w", err)
		}
		sent += n
		if err := waitCount(ctx, p.delivered, int64(sent), 30*time.Second); err != nil {
			return sent, fmt.Errorf("warm-up push not delivered: %w\n%s", err, g.logTail())
		}
		if g.size() == 0 {
			return sent, nil
		}
		// The counters move when a node settles its jobs, just after the
		// fake has them: wait for all of this round's.
		var per []int64
		if err := waitFor(ctx, 10*time.Second, func() bool {
			per = g.delivered(ctx)
			return sum(per) >= int64(sent)
		}); err != nil {
			return sent, fmt.Errorf("warm-up: nodes report %v delivered of %d: %w", per, sent, err)
		}
		if allPositive(per) {
			return sent, nil
		}
		if round == warmUpRounds {
			return sent, fmt.Errorf("warm-up: after %d pushes some node sent none (per node %v): is it taking jobs from the shared queue?", sent, per)
		}
	}
}

// waitFor polls cond until it holds or within passes.
func waitFor(ctx context.Context, within time.Duration, cond func() bool) error {
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s", within)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond): // poll interval
		}
	}
	return nil
}

func sum(v []int64) int64 {
	var t int64
	for _, x := range v {
		t += x
	}
	return t
}

func allPositive(v []int64) bool {
	for _, x := range v {
		if x <= 0 {
			return false
		}
	}
	return true
}
