package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"
)

// errUsage marks a bad command line (exit status 2).
var errUsage = errors.New("usage")

// scenario is one subcommand: it parses its flags and runs against env.
type scenario struct {
	name string
	help string
	run  func(ctx context.Context, env *runEnv, args []string) (*result, error)
}

var scenarios = []scenario{
	{"fanout", "N WebSocket clients, M events published to shared: delivered/s and publish→receive latency", runFanout},
	{"publish-latency", "one online user, R single-event requests/s: API answer and publish→receive latency", runPublishLatency},
	{"idle-memory", "N idle WebSocket connections: server RSS growth per connection", runIdleMemory},
	{"ingest", "POST /push batches of fcm device notifications from C concurrent callers: accepted jobs/s", runIngest},
	{"deliver-apns", "N registered iOS devices, M pushes via POST /push to an in-process fake APNs: jobs/s and enqueue→delivery latency", runDeliverAPNs},
	{"deliver-fcm", "N registered Android devices, M pushes via POST /push to an in-process fake FCM: jobs/s and enqueue→delivery latency", runDeliverFCM},
	{"recovery", "J jobs queued with APNs answering 503, SIGKILL, restart with APNs up: time to first delivery and lost jobs", runRecovery},
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	// A closed stdout (| head) must fail the write, not kill the process
	// before the deferred clean-up of the server and its temp directory.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	switch {
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "pushpull-bench:", err)
		os.Exit(1)
	}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: pushpull-bench <scenario> [flags]   (pushpull-bench <scenario> -h for flags)")
	for _, s := range scenarios {
		fmt.Fprintf(w, "  %-16s %s\n", s.name, s.help)
	}
}

// runEnv is what every scenario shares: where the server binary and the
// temporary directories come from.
type runEnv struct {
	bin     string
	tmp     string
	timeout time.Duration
	stderr  io.Writer
	// serverEnv is appended to every server's environment (-env flags),
	// after the scenario's own settings, so it can override them.
	serverEnv []string
	// perfOut, when set, is where the measured phase's perf profile of
	// the server goes (-perf).
	perfOut string
	// remote is the running instance given by -target, or nil.
	remote *server
}

// start launches a server for one run; the caller must stop it.
func (e *runEnv) start(ctx context.Context, extraEnv ...string) (*server, error) {
	if e.remote != nil {
		if len(extraEnv) > 0 || len(e.serverEnv) > 0 || e.perfOut != "" {
			return nil, errNeedsOwnServer
		}
		r := *e.remote
		return &r, nil
	}
	dir, err := os.MkdirTemp(e.tmp, "run-")
	if err != nil {
		return nil, err
	}
	return startServer(ctx, e.bin, dir, append(extraEnv, e.serverEnv...))
}

// run parses the common flags, builds the server if needed and runs one
// scenario, printing its summary line and JSON line to stdout.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	if len(args) == 0 {
		usage(stderr)
		return errUsage
	}
	i := slices.IndexFunc(scenarios, func(s scenario) bool { return s.name == args[0] })
	if i < 0 {
		usage(stderr)
		return errUsage
	}
	sc := scenarios[i]
	tmp, err := os.MkdirTemp("", "pushpull-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	env := &runEnv{tmp: tmp, stderr: stderr}
	res, err := sc.run(ctx, env, args[1:])
	if err != nil {
		return err
	}
	res.Scenario = sc.name
	res.GenCPUs = selfCPU().Seconds()
	res.Date = time.Now().UTC().Format(time.RFC3339)
	fmt.Fprintln(stdout, res.Summary)
	b, err := json.Marshal(res)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, string(b))
	return nil
}

// commonFlags registers the flags every scenario has and returns a function
// that resolves them into env after parsing (building the server unless
// -bin is given).
func commonFlags(fs *flag.FlagSet, env *runEnv) func(ctx context.Context) error {
	bin := fs.String("bin", "", "pushpull `binary` to run (default: go build ./cmd/pushpull of this module)")
	timeout := fs.Duration("timeout", 2*time.Minute, "upper bound on the measured phase")
	fs.Func("env", "extra server environment `KEY=value` (repeatable), e.g. PUSHPULL_PUSH_WORKERS=4", func(v string) error {
		if !strings.HasPrefix(v, "PUSHPULL_") || !strings.Contains(v, "=") {
			return fmt.Errorf("want PUSHPULL_KEY=value, got %q", v)
		}
		env.serverEnv = append(env.serverEnv, v)
		return nil
	})
	fs.StringVar(&env.perfOut, "perf", "", "record a perf CPU profile of the server during the measured phase into `file` (needs perf)")
	remote := remoteFlags(fs)
	return func(ctx context.Context) error {
		env.timeout = *timeout
		r, err := remote()
		if err != nil {
			return err
		}
		if env.remote = r; r != nil {
			return nil // nothing to build
		}
		if *bin != "" {
			env.bin = *bin
			return nil
		}
		b, err := buildServer(ctx, env.tmp)
		env.bin = b
		return err
	}
}

// parse parses args with fs, mapping -h and errors to errUsage.
func parse(ctx context.Context, fs *flag.FlagSet, args []string, resolve func(context.Context) error) error {
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		return errUsage
	}
	return resolve(ctx)
}

// selfCPU is the user+system CPU time of this process so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// result is the JSON line of a run.
type result struct {
	Scenario     string         `json:"scenario"`
	Date         string         `json:"date"`
	Params       map[string]any `json:"params"`
	Throughput   float64        `json:"throughput"`
	Unit         string         `json:"throughput_unit"`
	P50ms        float64        `json:"p50_ms"`
	P90ms        float64        `json:"p90_ms"`
	P99ms        float64        `json:"p99_ms"`
	Extra        map[string]any `json:"extra,omitempty"`
	ServerRSSKiB int64          `json:"server_rss_kib"`
	ServerCPUs   float64        `json:"server_cpu_seconds"`
	// GenCPUs is the CPU time this generator used in the whole run: it
	// shares the cores with the server, so it bounds what can be measured.
	GenCPUs float64 `json:"generator_cpu_seconds"`
	Summary string  `json:"-"`
}

// setLatency fills the percentiles from ns samples (sorted in place).
func (r *result) setLatency(ns []int64) {
	r.P50ms, r.P90ms, r.P99ms = pct(ns, 50), pct(ns, 90), pct(ns, 99)
}

// pct returns the p-th percentile of ns in milliseconds, sorting ns.
func pct(ns []int64, p float64) float64 {
	if len(ns) == 0 {
		return 0
	}
	if !slices.IsSorted(ns) {
		slices.Sort(ns)
	}
	k := int(float64(len(ns)-1) * p / 100)
	return float64(ns[k]) / 1e6
}

// setServer records the server's RSS now and the CPU used since before.
func (r *result) setServer(s *server, before procStats) {
	if st, err := s.proc(); err == nil {
		r.ServerRSSKiB = st.RSSKiB
		r.ServerCPUs = (st.CPU - before.CPU).Seconds()
	}
}
