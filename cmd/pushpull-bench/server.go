package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// errNotReady is returned when the server does not answer /readyz in time.
var errNotReady = errors.New("server not ready")

// server is one pushpull process under test, owned by the scenario that
// started it; stop must be called (it is idempotent).
type server struct {
	cmd     *exec.Cmd
	bin     string
	env     []string
	dir     string
	logPath string
	apiURL  string // http://127.0.0.1:p
	wsURL   string // ws://127.0.0.1:p/sub/ws
	key     string
	secret  []byte
	http    *http.Client
	exited  chan struct{}
	stopped bool
	// remote is set for a running instance given by -target: nothing is
	// started, stopped or killed; pid (0: unknown) is read for RSS/CPU.
	remote bool
	pid    int
}

// buildServer compiles ./cmd/pushpull of the module containing the working
// directory into dir and returns the binary's path.
func buildServer(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "pushpull")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/pushpull/pushpull/cmd/pushpull")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("go build pushpull: %w: %s", err, out.String())
	}
	return bin, nil
}

// freePort asks the kernel for an unused loopback port. It is released
// before the server binds it; a collision shows up as a start failure.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// credentials are the API key and client JWT secret a server is started
// with; the nodes of a cluster share one pair, as a real deployment does.
type credentials struct {
	key    string
	secret []byte
}

func newCredentials() credentials {
	return credentials{key: "bench-" + randomHex(16), secret: []byte(randomHex(24))}
}

// startServer runs bin serve with a fresh data directory under dir and waits
// for /readyz. extraEnv entries (KEY=value) are appended to the defaults.
func startServer(ctx context.Context, bin, dir string, extraEnv []string) (*server, error) {
	return startServerWith(ctx, bin, dir, extraEnv, newCredentials())
}

// startServerWith is startServer with given credentials.
func startServerWith(ctx context.Context, bin, dir string, extraEnv []string, cred credentials) (*server, error) {
	apiPort, err := freePort()
	if err != nil {
		return nil, err
	}
	clientPort, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &server{
		dir:     filepath.Join(dir, "data"),
		logPath: filepath.Join(dir, "server.log"),
		apiURL:  fmt.Sprintf("http://127.0.0.1:%d", apiPort),
		wsURL:   fmt.Sprintf("ws://127.0.0.1:%d/sub/ws", clientPort),
		key:     cred.key,
		secret:  cred.secret,
		http: &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
			MaxIdleConns: 512, MaxIdleConnsPerHost: 512, IdleConnTimeout: 30 * time.Second,
		}},
	}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	logf, err := os.Create(s.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	env = append(env,
		"PUSHPULL_SERVER_DATA_DIR="+s.dir,
		"PUSHPULL_API_KEYS="+s.key,
		"PUSHPULL_CLIENT_JWT_SECRET="+string(s.secret),
		fmt.Sprintf("PUSHPULL_API_ADDR=127.0.0.1:%d", apiPort),
		fmt.Sprintf("PUSHPULL_CLIENT_ADDR=127.0.0.1:%d", clientPort),
		"PUSHPULL_LOG_LEVEL=warn",
		"PUSHPULL_CLIENT_MAX_CONNS_PER_USER=100000",
	)
	s.bin, s.env = bin, append(env, extraEnv...)
	if err := s.launch(logf); err != nil {
		return nil, err
	}
	if err := s.waitReady(ctx, 15*time.Second); err != nil {
		s.stop()
		return nil, fmt.Errorf("%w\n%s", err, s.logTail())
	}
	return s, nil
}

// launch starts the process with s.bin and s.env, logging to logf.
func (s *server) launch(logf *os.File) error {
	s.cmd = exec.Command(s.bin, "serve")
	s.cmd.Env = s.env
	s.cmd.Stdout, s.cmd.Stderr = logf, logf
	s.exited = make(chan struct{})
	s.stopped = false
	if err := s.cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", s.bin, err)
	}
	exited, cmd := s.exited, s.cmd
	go func() { _ = cmd.Wait(); close(exited) }()
	return nil
}

// kill ends the process with SIGKILL (no shutdown, no final commit) and
// waits until it is reaped.
func (s *server) kill() {
	if s.stopped || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Kill()
	<-s.exited
	s.http.CloseIdleConnections()
}

// restart starts the process again on the same data directory, ports and
// configuration, after kill or stop. It returns once the process runs; the
// caller decides how long to wait for /readyz.
func (s *server) restart() error {
	if !s.stopped {
		return errors.New("restart of a running server")
	}
	logf, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return err
	}
	defer logf.Close()
	return s.launch(logf)
}

func (s *server) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("%w: process exited", errNotReady)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		resp, err := s.http.Get(s.apiURL + "/readyz")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond): // poll interval, not a wait for an event
		}
	}
	return fmt.Errorf("%w within %s", errNotReady, within)
}

// stop sends SIGTERM, waits up to 10 s, then kills. Safe to call twice.
func (s *server) stop() {
	if s.stopped || s.cmd == nil || s.cmd.Process == nil {
		return
	}
	s.stopped = true
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.exited
	}
	s.http.CloseIdleConnections()
}

func (s *server) logTail() string {
	b, _ := os.ReadFile(s.logPath)
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return "server log:\n" + string(b)
}

// post sends body to the publisher API and returns the status and answer.
func (s *server) post(ctx context.Context, path string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.apiURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.http.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	return resp.StatusCode, out, err
}

// procStats is what /proc says about the server process.
type procStats struct {
	RSSKiB int64
	CPU    time.Duration // utime + stime
}

// clockTick is USER_HZ, 100 on every Linux the project targets.
const clockTick = 100

func (s *server) proc() (procStats, error) {
	var st procStats
	if s.remote && s.pid == 0 {
		return st, nil // not reported (-target-pid not given)
	}
	pid := s.pid
	if !s.remote {
		pid = s.cmd.Process.Pid
	}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return st, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) > 0 {
				st.RSSKiB, _ = strconv.ParseInt(f[0], 10, 64)
			}
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return st, err
	}
	// Fields after the command name, which may contain spaces, ends with ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return st, fmt.Errorf("parse /proc/%d/stat", pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 { // state is f[0]; utime is field 14 → f[11], stime f[12]
		return st, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(f))
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	st.CPU = time.Duration(ut+stt) * time.Second / clockTick
	return st, nil
}

// goStats reads the server's own Go runtime gauges from /metrics (heap in
// use, goroutine stacks, goroutines) so memory can be split between the Go
// heap and the rest of RSS. Missing gauges are absent from the map.
func (s *server) goStats(ctx context.Context) map[string]float64 {
	want := []string{"go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines"}
	out := map[string]float64{}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.apiURL+"/metrics", nil)
	if err != nil {
		return out
	}
	resp, err := s.http.Do(req)
	if err != nil {
		return out
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return out
	}
	for _, line := range strings.Split(string(b), "\n") {
		for _, w := range want {
			if rest, ok := strings.CutPrefix(line, w+" "); ok {
				if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
					out[w] = v
				}
			}
		}
	}
	return out
}
