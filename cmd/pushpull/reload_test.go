package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers"
)

// apiStatus calls the publisher API with key and returns the status.
func apiStatus(t *testing.T, addr, key, method, path string, body []byte) int {
	t.Helper()
	req, err := http.NewRequest(method, "http://"+addr+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// fcmPush is a push request of one notification to one FCM token of app.
func fcmPush(app, token string) []byte {
	return fmt.Appendf(nil, `{"notifications":[{"devices":[{"platform":"fcm","token":%q,"app_id":%q}],"title":"t","body":"b"}]}`, token, app)
}

// hup sends SIGHUP and waits for a log line containing want (a string not
// seen before: relProc.watch fires once per string).
func hup(t *testing.T, p *relProc, want string) {
	t.Helper()
	seen := p.watch(want)
	if err := p.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	select {
	case <-seen:
	case <-p.exited:
		t.Fatalf("gateway exited on SIGHUP: %v\n%s", p.err, p.logTail())
	case <-time.After(20 * time.Second):
		t.Fatalf("no %q after SIGHUP\n%s", want, p.logTail())
	}
}

// SIGHUP applies the new API keys, log level and provider apps of the
// edited file, names what needs a restart, and an invalid file changes
// nothing.
func TestReloadOnSIGHUP(t *testing.T) {
	t.Parallel()
	e := newRelEnv(t, "")
	p := e.start(t, nil)
	const newKey = "reloaded-api-key-0123456789abcdef"
	const newApp = "rl-fcm-2"

	if got := apiStatus(t, p.api, relKey, http.MethodGet, "/api/v1/queue", nil); got != 200 {
		t.Fatalf("old key before reload: %d", got)
	}
	if got := apiStatus(t, p.api, newKey, http.MethodGet, "/api/v1/queue", nil); got != 401 {
		t.Fatalf("new key before reload: %d", got)
	}

	// The new file: another key, debug logs, a second FCM app, and a
	// dispatcher change that cannot be applied live.
	edited := strings.Replace(e.toml, relKey, newKey, 1)
	edited = strings.Replace(edited, fmt.Sprintf("workers = %d\n", relWorkers), fmt.Sprintf("workers = %d\n", relWorkers+1), 1)
	edited += fmt.Sprintf("\n[[fcm.app]]\nid = %q\ncredentials_file = %q\n\n[log]\nlevel = \"debug\"\n",
		newApp, filepath.Join(e.dir, "sa.json"))
	if err := os.WriteFile(e.cfg, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	restart := p.watch("needs restart: push.workers")
	hup(t, p, "config reloaded")
	select {
	case <-restart:
	case <-time.After(5 * time.Second):
		t.Fatalf("no needs-restart line for push.workers\n%s", p.logTail())
	}

	if got := apiStatus(t, p.api, relKey, http.MethodGet, "/api/v1/queue", nil); got != 401 {
		t.Errorf("old key after reload: %d, want 401", got)
	}
	if got := apiStatus(t, p.api, newKey, http.MethodGet, "/api/v1/queue", nil); got != 200 {
		t.Errorf("new key after reload: %d, want 200", got)
	}

	// The app added by the reload delivers (without the provider swap its
	// job would be dead-lettered), and the dispatcher's debug line shows
	// the new level.
	debug := p.watch("batch sent")
	if got := apiStatus(t, p.api, newKey, http.MethodPost, "/api/v1/push", fcmPush(newApp, "tok-new-app:APA91b")); got != 202 {
		t.Fatalf("push to the new app: %d", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.fcm.WaitDelivered(ctx, 1); err != nil {
		t.Fatalf("push to the reloaded app not delivered: %v\n%s", err, p.logTail())
	}
	if r := e.fcm.Received(); len(r) != 1 || r[0].Token != "tok-new-app:APA91b" {
		t.Fatalf("fake got %+v", r)
	}
	select {
	case <-debug:
	case <-time.After(10 * time.Second):
		t.Errorf("no debug line after the level went to debug\n%s", p.logTail())
	}

	// An invalid file: logged, nothing changes.
	invalid := strings.Replace(edited, fmt.Sprintf("workers = %d\n", relWorkers+1), "workers = 0\n", 1)
	if err := os.WriteFile(e.cfg, []byte(invalid), 0o600); err != nil {
		t.Fatal(err)
	}
	hup(t, p, "push.workers: must be positive")
	if got := apiStatus(t, p.api, newKey, http.MethodGet, "/api/v1/queue", nil); got != 200 {
		t.Errorf("key after a failed reload: %d, want 200", got)
	}
	// A provider that cannot be built (missing credentials) also changes
	// nothing, the keys included.
	broken := strings.Replace(edited, newKey, "another-api-key-0123456789abcdef", 1) +
		"\n[[fcm.app]]\nid = \"broken\"\ncredentials_file = \"/nonexistent/sa.json\"\n"
	if err := os.WriteFile(e.cfg, []byte(broken), 0o600); err != nil {
		t.Fatal(err)
	}
	hup(t, p, "/nonexistent/sa.json")
	if got := apiStatus(t, p.api, newKey, http.MethodGet, "/api/v1/queue", nil); got != 200 {
		t.Errorf("key after a reload with a broken provider: %d, want 200", got)
	}

	// The gateway still stops cleanly, closing the replaced providers.
	stopped := p.watch("pushpull stopped")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	select {
	case <-stopped:
	default:
		t.Fatalf("no clean stop after reloads: %v\n%s", p.err, p.logTail())
	}
	if p.err != nil {
		t.Fatalf("exit after SIGTERM: %v", p.err)
	}
}

// The safety net of the logger keeps 8 characters of a secret attribute.
func TestLoggerRedactsSecrets(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log, level := newLogger(LogConfig{Level: "info", Format: "text"}, &buf)
	log.Info("x", "token", "0123456789abcdefghij", "user", "0123456789abcdefghij", "api_key", "short")
	log.Debug("hidden")
	level.Set(-4)
	log.Debug("shown")
	out := buf.String()
	if strings.Contains(out, "token=0123456789abcdefghij") || !strings.Contains(out, "token=01234567…") {
		t.Errorf("token not redacted: %s", out)
	}
	if !strings.Contains(out, "user=0123456789abcdefghij") || !strings.Contains(out, "api_key=short") {
		t.Errorf("non-secrets or short values changed: %s", out)
	}
	if strings.Contains(out, "hidden") || !strings.Contains(out, "shown") {
		t.Errorf("level var not applied: %s", out)
	}
}

// stubProvider records sends; a send blocks until release is closed.
type stubProvider struct {
	name    string
	release chan struct{}
	entered chan struct{}
	sends   atomic.Int64
	closed  atomic.Bool
	// sentAfterClose is set when a send starts on a closed provider.
	sentAfterClose atomic.Bool
}

func (s *stubProvider) Platform() string      { return "fcm" }
func (s *stubProvider) HasApp(id string) bool { return id == s.name }
func (s *stubProvider) Close() error          { s.closed.Store(true); return nil }
func (s *stubProvider) Send(_ context.Context, b []providers.Message) []providers.Result {
	if s.closed.Load() {
		s.sentAfterClose.Store(true)
	}
	s.sends.Add(1)
	if s.entered != nil {
		s.entered <- struct{}{}
	}
	if s.release != nil {
		<-s.release
	}
	return make([]providers.Result, len(b))
}

// A swapped-out provider is closed only after its send in flight returns;
// new sends and HasApp go to the new one at once; Close waits for the
// retired provider to be closed.
func TestSwapProviderClosesTheOldOneAfterItsSends(t *testing.T) {
	t.Parallel()
	old := &stubProvider{name: "old", release: make(chan struct{}), entered: make(chan struct{}, 1)}
	sp := swappable([]providers.Provider{old})[0].(*swapProvider)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sp.Send(context.Background(), make([]providers.Message, 1))
	}()
	<-old.entered

	nw := &stubProvider{name: "new"}
	sp.swap(nw)
	if sp.HasApp("old") || !sp.HasApp("new") {
		t.Fatal("HasApp does not follow the swap")
	}
	sp.Send(context.Background(), make([]providers.Message, 1))
	if nw.sends.Load() != 1 || old.sends.Load() != 1 {
		t.Fatalf("sends: old %d new %d", old.sends.Load(), nw.sends.Load())
	}
	if old.closed.Load() {
		t.Fatal("old provider closed with a send in flight")
	}
	close(old.release)
	<-done
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if !old.closed.Load() || !nw.closed.Load() {
		t.Fatalf("closed: old %v new %v", old.closed.Load(), nw.closed.Load())
	}
	if old.sentAfterClose.Load() || nw.sentAfterClose.Load() {
		t.Fatal("a send reached a closed provider")
	}
}

// Swaps racing with sends never let a send reach a closed provider.
func TestSwapProviderUnderConcurrentSends(t *testing.T) {
	t.Parallel()
	first := &stubProvider{name: "p0"}
	sp := swappable([]providers.Provider{first})[0].(*swapProvider)
	all := []*stubProvider{first}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				sp.Send(ctx, make([]providers.Message, 1))
			}
		})
	}
	for i := range 200 {
		p := &stubProvider{name: fmt.Sprint("p", i+1)}
		all = append(all, p)
		sp.swap(p)
	}
	cancel()
	wg.Wait()
	sp.Close()
	for _, p := range all {
		if p.sentAfterClose.Load() || !p.closed.Load() {
			t.Fatalf("%s: sent after close %v, closed %v", p.name, p.sentAfterClose.Load(), p.closed.Load())
		}
	}
}
