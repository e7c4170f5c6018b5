package push

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
	"github.com/pushpull/pushpull/queue"
)

const (
	crashEnv      = "PUSH_CRASH_CHILD"
	crashRequests = 10
	crashPerReq   = 20
)

func crashToken(req, i int) string { return fmt.Sprintf("crash-%02d-%02d:APA91b", req, i) }

// crashService opens the queue, the registry, an FCM provider against the
// fake at url and a push service over dbPath, as the gateway would.
func crashService(t testing.TB, dbPath, url, saFile string) (*Service, func()) {
	db, err := bbolt.Open(dbPath, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q, err := queue.Open(db, queue.Options{Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	reg, err := devices.Open(db, devices.Options{PurgeInterval: -1, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := fcm.New(context.Background(), fcm.Options{
		Apps: []fcm.App{{ID: fcmApp, CredentialsFile: saFile}}, Endpoint: url + "/v1", Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	svc, err := New(q, reg, []providers.Provider{p}, Options{Workers: 2, LeaseBatch: 20, Logger: quiet()})
	if err != nil {
		t.Fatal(err)
	}
	return svc, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = svc.Stop(ctx)
		p.Close()
		q.Close()
		reg.Close()
		db.Close()
	}
}

// TestKill9Child is the child process of TestKill9: it accepts pushes,
// prints each accepted request, starts dispatching and waits to be killed.
func TestKill9Child(t *testing.T) {
	if os.Getenv(crashEnv) == "" {
		t.Skip("child process of TestKill9")
	}
	svc, _ := crashService(t, os.Getenv(crashEnv+"_DB"), os.Getenv(crashEnv+"_URL"), os.Getenv(crashEnv+"_SA"))
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	for r := range crashRequests {
		req := Request{Notification: providers.Notification{Body: "crash " + strconv.Itoa(r)}}
		for i := range crashPerReq {
			req.Devices = append(req.Devices, DeviceTarget{Platform: "fcm", Token: crashToken(r, i), AppID: fcmApp})
		}
		if _, err := svc.Push(context.Background(), []Request{req}); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("ACCEPTED %d\n", r)
	}
	select {} // dispatching until killed
}

// TestKill9: a child process accepts pushes and dispatches them to a slow
// fake; it is killed with SIGKILL mid-dispatch; a new process on the same
// file delivers every accepted job at least once.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns a child process")
	}
	t.Parallel()
	f, err := fake.NewFCM(fake.FCMOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	f.SetDefault(fake.FCMBehavior{Delay: 100 * time.Millisecond})
	sa, err := f.ServiceAccountJSON(fcmProj)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	saFile, dbPath := filepath.Join(dir, "sa.json"), filepath.Join(dir, "push.db")
	if err := os.WriteFile(saFile, sa, 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9Child$", "-test.count=1")
	cmd.Env = append(os.Environ(), crashEnv+"=1", crashEnv+"_DB="+dbPath, crashEnv+"_URL="+f.URL(), crashEnv+"_SA="+saFile)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	accepted := map[int]bool{}
	scanDone := make(chan struct{})
	go func() {
		defer close(scanDone)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if v, ok := strings.CutPrefix(sc.Text(), "ACCEPTED "); ok {
				n, _ := strconv.Atoi(v)
				mu.Lock()
				accepted[n] = true
				mu.Unlock()
			}
		}
	}()
	// Kill once some pushes went out and others are still in flight or
	// queued.
	waitFor(t, "the child to deliver some pushes", func() bool { return f.Delivered() >= 30 })
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	<-scanDone
	before := f.Delivered()
	mu.Lock()
	n := len(accepted)
	mu.Unlock()
	if n == 0 || before >= int64(n*crashPerReq) {
		t.Fatalf("killed too late to test anything: %d accepted, %d delivered", n, before)
	}

	f.SetDefault(fake.FCMBehavior{})
	svc, closeAll := crashService(t, dbPath, f.URL(), saFile)
	defer closeAll()
	if err := svc.Start(); err != nil {
		t.Fatal(err)
	}
	missing := func() []string {
		seen := map[string]bool{}
		for _, r := range f.Received() {
			if r.Status == 200 {
				seen[r.Token] = true
			}
		}
		var miss []string
		mu.Lock()
		defer mu.Unlock()
		for r := range accepted {
			for i := range crashPerReq {
				if !seen[crashToken(r, i)] {
					miss = append(miss, crashToken(r, i))
				}
			}
		}
		return miss
	}
	waitFor(t, "every accepted push delivered after restart", func() bool { return len(missing()) == 0 })
	t.Logf("accepted %d jobs; %d delivered before the kill, %d sends in all", n*crashPerReq, before, f.Delivered())
}
