package main

// Shared helpers of the process-level reliability suites
// (reliability_*_test.go): a real pushpull child process (TestMain's
// PUSHPULL_TEST_MAIN mechanism) configured against in-process fakes, an
// API client, and a ledger of what was accepted and what the fakes got.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers/fake"
)

// soak reports whether the long mode was asked for (make soak).
func soak() bool { return os.Getenv("PUSHPULL_SOAK") == "1" }

// iterations picks a loop count for the mode: -short, default, soak.
func iterations(short, def, long int) int {
	switch {
	case soak():
		return long
	case testing.Short():
		return short
	}
	return def
}

const (
	relKey    = "reliability-api-key-0123456789"
	relSecret = "reliability-jwt-secret-0123456789abcdef"
	relFCMApp = "rel-fcm"
	// relWorkers and relLeaseBatch bound what can be in flight, so they
	// bound the duplicates a crash may cause.
	relWorkers    = 2
	relLeaseBatch = 50
)

// relEnv is a data directory, a config file and the fakes a gateway child
// is configured against.
type relEnv struct {
	dir  string
	cfg  string
	fcm  *fake.FCM
	toml string
}

// newRelEnv starts a fake FCM and writes a config pointing at it; extra
// TOML is appended (more sections, never keys of the sections written
// here).
func newRelEnv(t *testing.T, extra string) *relEnv {
	t.Helper()
	f, err := fake.NewFCM(fake.FCMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	dir := t.TempDir()
	sa, err := f.ServiceAccountJSON("rel-project")
	if err != nil {
		t.Fatal(err)
	}
	saFile := filepath.Join(dir, "sa.json")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}
	e := &relEnv{dir: dir, cfg: filepath.Join(dir, "pushpull.toml"), fcm: f}
	e.toml = relTOML(filepath.Join(dir, "data"), f.URL()+"/v1", saFile, 10*time.Second) + extra
	if err := os.WriteFile(e.cfg, []byte(e.toml), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// relTOML is the configuration the suites run the gateway with: loopback
// listeners on random ports, the test key and secret, short backoff, and
// one FCM app against the fake at fcmURL.
func relTOML(dataDir, fcmURL, saFile string, leaseTimeout time.Duration) string {
	return fmt.Sprintf(`
[server]
data_dir = %q
shutdown_timeout = "5s"

[api]
addr = "127.0.0.1:0"
keys = [%q]

[client]
addr = "127.0.0.1:0"
jwt_secret = %q

[queue]
backoff_base = "100ms"
backoff_cap = "1s"
lease_timeout = %q

[push]
workers = %d
lease_batch = %d
send_timeout = "10s"

[fcm]
endpoint = %q
timeout = "5s"

[[fcm.app]]
id = %q
credentials_file = %q
`, dataDir, relKey, relSecret, leaseTimeout.String(), relWorkers, relLeaseBatch, fcmURL, relFCMApp, saFile)
}

// childEnviron is the test's environment without the variables that steer
// the suites (PUSHPULL_SOAK, PUSHPULL_TEST_*): the gateway would refuse
// them as unknown configuration keys.
func childEnviron() []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PUSHPULL_SOAK=") && !strings.HasPrefix(kv, "PUSHPULL_TEST_") {
			out = append(out, kv)
		}
	}
	return out
}

// runChild runs main() in a child process in dir with extra environment
// (and childEnviron) and returns its output and exit code.
func runChild(t *testing.T, dir string, env ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0])
	cmd.Dir = dir
	cmd.Env = append(childEnviron(), append([]string{"PUSHPULL_TEST_MAIN=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	case err != nil:
		t.Fatal(err)
	}
	return string(out), 0
}

// relProc is one gateway child process.
type relProc struct {
	cmd    *exec.Cmd
	api    string
	client string
	exited chan struct{}
	err    error // of Wait, once exited is closed

	mu    sync.Mutex
	tail  []string // last lines of its log
	lines int
	seen  map[string]chan struct{}
	// counted holds how many log lines contained each of countedLines.
	counted map[string]int
	// all is the whole log, up to maxLog bytes (the secrets audit reads it).
	all strings.Builder
}

const maxLog = 8 << 20

// countedLines are log messages the suites count (see relProc.count).
var countedLines = []string{"closing slow consumer"}

const tailLines = 60

// start runs the gateway on e's config and waits for it to listen. wrap,
// when given, is a command line that execs the binary (e.g. a shell that
// sets ulimit first); the binary path is appended to it.
func (e *relEnv) start(t *testing.T, wrap []string, env ...string) *relProc {
	t.Helper()
	args := append(append([]string(nil), wrap...), os.Args[0])
	p := &relProc{exited: make(chan struct{}), seen: make(map[string]chan struct{}), counted: make(map[string]int)}
	p.cmd = exec.Command(args[0], args[1:]...)
	p.cmd.Dir = e.dir
	p.cmd.Env = append(childEnviron(), append([]string{"PUSHPULL_TEST_MAIN=1", "PUSHPULL_CONFIG=" + e.cfg}, env...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout = io.Discard
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	started := p.watch("pushpull started")
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			p.line(sc.Text())
		}
		_, _ = io.Copy(io.Discard, stderr)
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() { p.kill() })
	select {
	case <-started:
	case <-p.exited:
		t.Fatalf("gateway exited before starting: %v\n%s", p.err, p.logTail())
	case <-time.After(30 * time.Second):
		t.Fatalf("gateway did not start\n%s", p.logTail())
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.tail {
		if m := startedRE.FindStringSubmatch(l); m != nil {
			p.api, p.client = m[1], m[2]
		}
	}
	if p.api == "" {
		t.Fatalf("no addresses in the started line\n%s", strings.Join(p.tail, "\n"))
	}
	return p
}

// watch returns a channel closed when a log line containing s appears.
func (p *relProc) watch(s string) <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	ch, ok := p.seen[s]
	if !ok {
		ch = make(chan struct{})
		p.seen[s] = ch
	}
	return ch
}

func (p *relProc) line(l string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lines++
	if p.all.Len() < maxLog {
		p.all.WriteString(l)
		p.all.WriteByte('\n')
	}
	if len(p.tail) == tailLines {
		copy(p.tail, p.tail[1:])
		p.tail = p.tail[:tailLines-1]
	}
	p.tail = append(p.tail, l)
	for _, s := range countedLines {
		if strings.Contains(l, s) {
			p.counted[s]++
		}
	}
	for s, ch := range p.seen {
		if ch != nil && strings.Contains(l, s) {
			close(ch)
			p.seen[s] = nil
		}
	}
}

// count is how many log lines so far contained s, one of countedLines.
func (p *relProc) count(s string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.counted[s]
}

// log is everything the child logged so far (up to maxLog bytes).
func (p *relProc) log() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.all.String()
}

// logTail is the end of the child's log, for failure messages.
func (p *relProc) logTail() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// kill sends SIGKILL and waits for the process to be gone. Idempotent.
func (p *relProc) kill() {
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// relAPI calls the publisher API with the test key.
type relAPI struct {
	base string
	c    *http.Client
}

func newRelAPI(addr string) *relAPI {
	return &relAPI{base: "http://" + addr, c: &http.Client{Timeout: 15 * time.Second}}
}

// do sends a request and returns the status and body; err is a transport
// failure (the process died, the connection was refused).
func (a *relAPI) do(ctx context.Context, method, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+relKey)
	req.Header.Set("Content-Type", "application/json")
	res, err := a.c.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	return res.StatusCode, raw, err
}

// pushBody is a push request of one notification to FCM devices given by
// token (no registry needed), with a data field naming the batch.
func pushBody(tokens []string, expirySeconds int, seq int) []byte {
	return pushBodyTo("fcm", relFCMApp, tokens, expirySeconds, seq)
}

// pushBodyTo is pushBody for another platform and app.
func pushBodyTo(platform, app string, tokens []string, expirySeconds int, seq int) []byte {
	type dev struct {
		Platform string `json:"platform"`
		Token    string `json:"token"`
		AppID    string `json:"app_id"`
	}
	devs := make([]dev, len(tokens))
	for i, tok := range tokens {
		devs[i] = dev{Platform: platform, Token: tok, AppID: app}
	}
	b, _ := json.Marshal(map[string]any{"notifications": []map[string]any{{
		"devices": devs, "title": "reliability", "body": fmt.Sprintf("push %d", seq),
		"data": map[string]string{"seq": fmt.Sprint(seq)}, "expiry": expirySeconds,
	}}})
	return b
}

// pushResult is the part of a 202 answer the suites read.
type pushResult struct {
	Results []struct {
		ID   string `json:"id"`
		Jobs int    `json:"jobs"`
	} `json:"results"`
}

// ledger records every token a suite pushed to and the latest time by
// which the gateway must have accepted it, and checks the fake's
// deliveries against it.
type ledger struct {
	mu sync.Mutex
	// accepted: answered 202; deadline is the answer time plus expiry.
	accepted map[string]time.Time
	// unsure: sent but not answered (the process died meanwhile): it may
	// or may not have been committed.
	unsure map[string]time.Duration
	// expiring: accepted tokens the fake refuses until they expired;
	// they must never be delivered.
	expiring map[string]bool
	ids      []string // notification ids of the expiring pushes
}

func newLedger() *ledger {
	return &ledger{accepted: map[string]time.Time{}, unsure: map[string]time.Duration{}, expiring: map[string]bool{}}
}

func (l *ledger) sent(tokens []string, expiry time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range tokens {
		l.unsure[t] = expiry
	}
}

func (l *ledger) accept(tokens []string, at time.Time, expiry time.Duration, expiring bool, id string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range tokens {
		delete(l.unsure, t)
		l.accepted[t] = at.Add(expiry)
		if expiring {
			l.expiring[t] = true
		}
	}
	if expiring {
		l.ids = append(l.ids, id)
	}
}

// verdict is what a ledger check found.
type verdict struct {
	accepted, delivered, duplicates, unsureDelivered, unsure, expiredKept int
	missing                                                               []string
	late                                                                  []string // delivered after expiry
	stranger                                                              []string // delivered but never sent
}

// check compares deliveries (status 200 sends of the fake) with the
// ledger. killedAt bounds the accept time of unsure tokens.
func (l *ledger) check(got []fake.FCMRequest, killedAt time.Time) verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	count := map[string]int{}
	var v verdict
	for _, r := range got {
		if r.Status != http.StatusOK {
			continue
		}
		count[r.Token]++
		deadline, ok := l.accepted[r.Token]
		if exp, unsure := l.unsure[r.Token]; unsure {
			deadline, ok = killedAt.Add(exp), true
		}
		switch {
		case !ok:
			v.stranger = append(v.stranger, r.Token)
		case r.At.After(deadline.Add(time.Second)): // expiry is whole seconds
			v.late = append(v.late, r.Token)
		}
	}
	for tok := range l.accepted {
		if l.expiring[tok] {
			v.expiredKept++
			continue
		}
		v.accepted++
		if count[tok] == 0 {
			v.missing = append(v.missing, tok)
		}
	}
	for _, n := range count {
		if n > 1 {
			v.duplicates += n - 1
		}
		v.delivered++
	}
	v.unsure = len(l.unsure)
	for tok := range l.unsure {
		if count[tok] > 0 {
			v.unsureDelivered++
		}
	}
	return v
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

// figure prints one machine-greppable line of suite figures; RELIABILITY.md
// quotes them.
func figure(t *testing.T, format string, args ...any) {
	t.Helper()
	t.Logf("FIGURE "+format, args...)
}
