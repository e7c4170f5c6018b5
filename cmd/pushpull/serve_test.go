package main

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestMain lets tests run this package's main() in a child process: the
// real binary's behaviour (signals, exit codes) without a separate build.
func TestMain(m *testing.M) {
	if os.Getenv("PUSHPULL_TEST_MAIN") == "1" {
		os.Unsetenv("PUSHPULL_TEST_MAIN")
		main()
		return
	}
	os.Exit(m.Run())
}

// gatewayProc is a pushpull child process.
type gatewayProc struct {
	cmd    *exec.Cmd
	lines  chan string
	api    string
	client string
}

var startedRE = regexp.MustCompile(`msg="pushpull started".* api=(\S+) client=(\S+)`)

// startGateway runs the gateway in dir with extra environment, waiting for
// its "started" log line.
func startGateway(t *testing.T, dir string, env ...string) *gatewayProc {
	t.Helper()
	p := &gatewayProc{lines: make(chan string, 1000)}
	p.cmd = exec.Command(os.Args[0])
	p.cmd.Dir = dir
	p.cmd.Env = append(os.Environ(), append([]string{
		"PUSHPULL_TEST_MAIN=1",
		"PUSHPULL_API_ADDR=127.0.0.1:0", "PUSHPULL_CLIENT_ADDR=127.0.0.1:0",
	}, env...)...)
	stderr, err := p.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); _ = p.cmd.Wait() })
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatal("gateway exited before starting")
			}
			if m := startedRE.FindStringSubmatch(l); m != nil {
				p.api, p.client = m[1], m[2]
				return p
			}
		case <-deadline:
			t.Fatal("gateway did not start")
		}
	}
}

// waitLine waits for a log line containing s.
func (p *gatewayProc) waitLine(t *testing.T, s string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("gateway output ended before %q", s)
			}
			if strings.Contains(l, s) {
				return
			}
		case <-deadline:
			t.Fatalf("no log line %q", s)
		}
	}
}

func TestServeDefaultsHealthAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	p := startGateway(t, dir)
	for _, addr := range []string{p.api, p.client} {
		res, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != 200 {
			t.Fatalf("readyz on %s: %d", addr, res.StatusCode)
		}
	}
	for _, f := range []string{"data/pushpull.db", "data/api_key", "data/jwt_secret"} {
		st, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s is readable by others: %v", f, st.Mode())
		}
	}
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, "pushpull stopped")
	if err := p.cmd.Wait(); err != nil {
		t.Fatalf("exit after SIGTERM: %v", err)
	}
}

func runMain(t *testing.T, dir string, env ...string) (string, int) {
	t.Helper()
	return runMainArgs(t, dir, nil, env...)
}

// runMainArgs runs main() in a child process with args, in dir.
func runMainArgs(t *testing.T, dir string, args []string, env ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), append([]string{"PUSHPULL_TEST_MAIN=1"}, env...)...)
	out, err := cmd.CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return string(out), code
}

func TestStartupFailuresNameTheCause(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()

	out, code := runMain(t, t.TempDir(), "PUSHPULL_API_ADDR="+ln.Addr().String(), "PUSHPULL_CLIENT_ADDR=127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "api listener "+ln.Addr().String()) || !strings.Contains(out, "address already in use") {
		t.Errorf("port taken: code %d, output:\n%s", code, out)
	}

	out, code = runMain(t, t.TempDir(), "PUSHPULL_LOG_LEVEL=loud")
	if code == 0 || !strings.Contains(out, "log.level") {
		t.Errorf("bad config: code %d, output:\n%s", code, out)
	}

	// A second gateway on the same data directory finds the DB locked.
	dir := t.TempDir()
	startGateway(t, dir)
	out, code = runMain(t, dir, "PUSHPULL_API_ADDR=127.0.0.1:0", "PUSHPULL_CLIENT_ADDR=127.0.0.1:0")
	if code == 0 || !strings.Contains(out, "locked by another process") {
		t.Errorf("db locked: code %d, output:\n%s", code, out)
	}
}

func TestVersionAndUnknownCommand(t *testing.T) {
	var out, errb strings.Builder
	if code := run(context.Background(), []string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "pushpull ") {
		t.Fatalf("version: code %d out %q", code, out.String())
	}
	out.Reset()
	if code := run(context.Background(), []string{"frobnicate"}, &out, &errb); code != 2 || !strings.Contains(errb.String(), "unknown command") {
		t.Fatalf("unknown command: code %d err %q", code, errb.String())
	}
}

// The demo runs the whole push pipeline against the in-process fakes: both
// fakes must receive the push and the job states must say delivered.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("starts fakes and a gateway")
	}
	out, code := runMainArgs(t, t.TempDir(), []string{"demo"})
	if code != 0 {
		t.Fatalf("demo exit %d:\n%s", code, out)
	}
	for _, want := range []string{"-> 202", "fake APNs received POST /3/device/", "fake FCM received for project", `"delivered":2`} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}

// compact rewrites the database of a stopped gateway and keeps the old file.
func TestCompact(t *testing.T) {
	dir := t.TempDir()
	p := startGateway(t, dir)
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	p.waitLine(t, "pushpull stopped")
	p.cmd.Wait()
	out, code := runMainArgs(t, dir, []string{"compact"})
	if code != 0 || !strings.Contains(out, "compacted") {
		t.Fatalf("compact: %d %s", code, out)
	}
	for _, f := range []string{"data/pushpull.db", "data/pushpull.db.bak"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	// The compacted file serves again.
	p = startGateway(t, dir)
	res, err := http.Get("http://" + p.api + "/readyz")
	if err != nil || res.StatusCode != 200 {
		t.Fatalf("readyz after compact: %v %v", res, err)
	}
	res.Body.Close()
}
