package main

// Disk faults against the real binary: the data directory fills up while
// pushes arrive, then space returns; and a read-only data directory. A
// push the gateway cannot persist is answered 503 "unavailable", never
// 202; the gateway recovers by itself once space returns; every accepted
// push is delivered; and the database passes bbolt's consistency check.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/providers/fake"
)

// mountTmpfs mounts a tmpfs of size at dir, reporting false when the
// sandbox does not permit it.
func mountTmpfs(t *testing.T, dir, opts string) bool {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", opts, "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Logf("mount -t tmpfs -o %s: %v %s", opts, err, out)
		return false
	}
	t.Cleanup(func() { _ = exec.Command("umount", "-l", dir).Run() })
	return true
}

// freeBytes is the space left on the file system holding dir.
func freeBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * st.Bsize
}

func TestReliabilityDiskFull(t *testing.T) {
	e := newRelEnv(t, "")
	data := filepath.Join(e.dir, "data")
	var wrap []string
	filler := filepath.Join(data, "filler")
	mode := "tmpfs"
	// PUSHPULL_TEST_DISK=rlimit forces the fallback (to test it where
	// mounting works).
	if os.Getenv("PUSHPULL_TEST_DISK") == "rlimit" || !mountTmpfs(t, data, "size=8m,mode=0700") {
		// Fallback: a file-size limit on the child; SIGXFSZ ignored so
		// that writes past it fail with EFBIG instead of killing it.
		mode = "rlimit-fsize"
		wrap = []string{"sh", "-c", `trap '' XFSZ; ulimit -f 1024; exec "$0"`}
	}
	t.Logf("disk-full mode: %s", mode)
	// Deliveries wait until the end, so the queue only grows meanwhile.
	if err := e.fcm.SetFaults(fake.Faults{Unavailable: true}); err != nil {
		t.Fatal(err)
	}
	p := e.start(t, wrap)
	api := newRelAPI(p.api)
	if mode == "tmpfs" {
		// Leave a little room above what the fresh database uses.
		room := freeBytes(t, data) - 512<<10
		if err := os.WriteFile(filler, make([]byte, room), 0o600); err != nil {
			t.Fatal(err)
		}
	}

	var accepted []string
	refused, seq := 0, 0
	push := func() (int, string) {
		seq++
		toks := make([]string, 100)
		for i := range toks {
			toks[i] = fmt.Sprintf("disk-%d-%d-%s:APA91b", seq, i, strings.Repeat("x", 60))
		}
		status, raw, err := api.do(context.Background(), http.MethodPost, "/api/v1/push", pushBody(toks, 3600, seq))
		if err != nil {
			t.Fatalf("push %d: %v\n%s", seq, err, p.logTail())
		}
		var m struct {
			Error struct{ Code string } `json:"error"`
		}
		_ = json.Unmarshal(raw, &m)
		if status == http.StatusAccepted {
			accepted = append(accepted, toks...)
		}
		return status, m.Error.Code
	}
	for seq < 400 && refused < 5 {
		status, code := push()
		switch {
		case status == http.StatusAccepted:
		case status == http.StatusServiceUnavailable && code == "unavailable":
			refused++
		default:
			t.Fatalf("push %d on a full disk: %d %q (want 202 or 503 unavailable)\n%s", seq, status, code, p.logTail())
		}
	}
	if refused == 0 {
		t.Fatalf("the disk never filled (%d pushes accepted)", seq)
	}
	full := seq

	// Space returns; the gateway accepts again without a restart.
	if mode == "tmpfs" {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 20*time.Second, "pushes accepted again", func() bool {
			status, _ := push()
			return status == http.StatusAccepted
		})
		figure(t, "disk/full mode=%s pushes=%d refused_503=%d accepted_jobs=%d recovered=yes", mode, seq, refused, len(accepted))
	} else {
		figure(t, "disk/full mode=%s pushes=%d refused_503=%d accepted_jobs=%d", mode, full, refused, len(accepted))
	}

	if err := e.fcm.SetFaults(fake.Faults{}); err != nil {
		t.Fatal(err)
	}
	if mode == "tmpfs" {
		waitAll(t, "every accepted push delivered", accepted, func() map[string]int { return deliveredFCM(e.fcm) })
	}
	// Stop cleanly and check the file.
	stopped := p.watch("pushpull stopped")
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatalf("no clean stop\n%s", p.logTail())
	}
	<-p.exited
	checkDB(t, filepath.Join(data, dbFile))
}

// checkDB opens a stopped gateway's database and runs bbolt's consistency
// check over it.
func checkDB(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second, ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.View(func(tx *bolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		return nil
	})
	if err != nil {
		t.Fatalf("database inconsistent: %v", err)
	}
}

func TestReliabilityDiskReadOnly(t *testing.T) {
	e := newRelEnv(t, "")
	data := filepath.Join(e.dir, "data")
	// A first run creates the database; then the directory becomes
	// read-only under it.
	p := e.start(t, nil)
	p.kill()
	if !mountTmpfs(t, data, "size=1m,ro") {
		t.Skip("cannot mount a read-only tmpfs here")
	}
	out, code := runChild(t, e.dir, "PUSHPULL_CONFIG="+e.cfg)
	if code == 0 || !strings.Contains(out, "read-only file system") {
		t.Fatalf("read-only data dir: exit %d\n%s", code, out)
	}
	figure(t, "disk/read-only startup_refused=yes")
}
