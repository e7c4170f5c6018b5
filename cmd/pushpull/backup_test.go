package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/queue"
)

// queuedJobs opens a backup with the real queue and counts its live jobs.
func queuedJobs(t *testing.T, path string) int {
	t.Helper()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatalf("backup %s does not open: %v", path, err)
	}
	defer db.Close()
	q, err := queue.Open(db, queue.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	st, err := q.Stats()
	if err != nil {
		t.Fatal(err)
	}
	return st.Due + st.Deferred + st.InFlight
}

// backup copies a running gateway's database through its API (found by
// the file lock, addressed from the configuration) and a stopped one's
// directly; both copies hold the queued jobs.
func TestBackupOnlineAndOffline(t *testing.T) {
	t.Parallel()
	e := newRelEnv(t, "")
	// FCM is down: the pushes stay in the queue, retrying.
	e.fcm.SetDefault(fake.FCMBehavior{ErrorCode: fake.FCMUnavailable})
	p := e.start(t, nil)
	const jobs = 30
	for i := range jobs / 3 {
		toks := []string{fmt.Sprintf("bk-%d-a", i), fmt.Sprintf("bk-%d-b", i), fmt.Sprintf("bk-%d-c", i)}
		if got := apiStatus(t, p.api, relKey, http.MethodPost, "/api/v1/push", pushBody(toks, 3600, i)); got != 202 {
			t.Fatalf("push %d: %d", i, got)
		}
	}

	online := filepath.Join(t.TempDir(), "online.db")
	out, code := runMainArgs(t, e.dir, []string{"backup", online},
		"PUSHPULL_CONFIG="+e.cfg, "PUSHPULL_API_ADDR="+p.api)
	if code != 0 || !strings.Contains(out, "backup (online") {
		t.Fatalf("online backup: exit %d\n%s", code, out)
	}
	if n := queuedJobs(t, online); n != jobs {
		t.Errorf("online backup holds %d jobs, want %d", n, jobs)
	}

	// A wrong key is refused and leaves no file behind.
	bad := filepath.Join(t.TempDir(), "bad.db")
	out, code = runMainArgs(t, e.dir, []string{"backup", "--key", "wrong-key-0123456789abc", bad},
		"PUSHPULL_CONFIG="+e.cfg, "PUSHPULL_API_ADDR="+p.api)
	if code == 0 || !strings.Contains(out, "401") {
		t.Errorf("backup with a wrong key: exit %d\n%s", code, out)
	}
	if m, _ := filepath.Glob(bad + "*"); len(m) != 0 {
		t.Errorf("a failed backup left %v", m)
	}

	stopped := p.watch("pushpull stopped")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	<-p.exited
	<-stopped

	offline := filepath.Join(t.TempDir(), "offline.db")
	out, code = runMainArgs(t, e.dir, []string{"backup", offline}, "PUSHPULL_CONFIG="+e.cfg)
	if code != 0 || !strings.Contains(out, "backup (offline)") {
		t.Fatalf("offline backup: exit %d\n%s", code, out)
	}
	if n := queuedJobs(t, offline); n != jobs {
		t.Errorf("offline backup holds %d jobs, want %d", n, jobs)
	}

	// No FILE: usage, exit 2.
	if out, code := runMainArgs(t, e.dir, []string{"backup"}, "PUSHPULL_CONFIG="+e.cfg); code != 2 {
		t.Errorf("backup without FILE: exit %d\n%s", code, out)
	}
}
