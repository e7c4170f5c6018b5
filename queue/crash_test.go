package queue

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.etcd.io/bbolt"
)

const crashEnv = "PUSHPULL_QUEUE_CRASH_DB"

// TestCrashChild is the child half of TestCrashKill9: it only runs when
// re-executed with crashEnv set. It enqueues from several goroutines
// forever and prints each id once Enqueue has returned nil.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("child process of TestCrashKill9")
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(db, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	var out sync.Mutex
	w := bufio.NewWriter(os.Stdout)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				jobs := make([]*Job, 1+i%4)
				for k := range jobs {
					jobs[k] = tagged(fmt.Sprint("u", g), "T", fmt.Sprint("S", g, "-", i, "-", k))
					jobs[k].NotificationID = fmt.Sprint("n", g, "-", i)
				}
				if err := q.Enqueue(context.Background(), jobs...); err != nil {
					fmt.Fprintln(os.Stderr, "enqueue:", err)
					os.Exit(3)
				}
				out.Lock()
				for _, j := range jobs {
					fmt.Fprintln(w, j.ID)
				}
				w.Flush() // each printed id was durable before this write
				out.Unlock()
			}
		})
	}
	wg.Wait()
}

// TestCrashKill9 kills an enqueuing process with SIGKILL at a random
// moment and checks that every id it reported as enqueued is stored
// exactly once, with consistent indexes, in a file that opens cleanly.
func TestCrashKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	t.Parallel()
	for iter := range 3 {
		path := filepath.Join(t.TempDir(), fmt.Sprint("crash", iter, ".db"))
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		cmd.Env = append(os.Environ(), crashEnv+"="+path)
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		lines := make(chan string, 1024)
		go func() { // ends at EOF, which the kill below guarantees
			defer close(lines)
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				lines <- sc.Text()
			}
		}()
		var acked []string
		first, ok := <-lines
		if !ok {
			cmd.Wait()
			t.Fatal("child printed nothing")
		}
		acked = append(acked, first)
		killAt := time.After(time.Duration(rand.IntN(400)) * time.Millisecond)
	collect:
		for {
			select {
			case l, ok := <-lines:
				if !ok {
					break collect
				}
				acked = append(acked, l)
			case <-killAt:
				killAt = nil
				if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
			}
		}
		cmd.Wait()
		if killAt != nil {
			t.Fatal("child ended before it was killed")
		}
		checkCrashDB(t, path, acked)
	}
}

func checkCrashDB(t *testing.T, path string, acked []string) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer db.Close()
	err = db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			return err
		}
		b := openBuckets(tx)
		jobs, due := b.jobs.Stats().KeyN, b.due.Stats().KeyN
		if jobs != due || b.subTag.Stats().KeyN != jobs {
			return fmt.Errorf("indexes out of step: %d jobs, %d due, %d sub tag", jobs, due, b.subTag.Stats().KeyN)
		}
		seen := make(map[string]bool, len(acked))
		for _, id := range acked {
			if seen[id] {
				return fmt.Errorf("id %s reported twice", id)
			}
			seen[id] = true
			if b.jobs.Get([]byte(id)) == nil {
				return fmt.Errorf("acknowledged job %s lost (%d acknowledged, %d stored)", id, len(acked), jobs)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Open(db, Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	s, err := q.Stats()
	if err != nil || s.Due < len(acked) {
		t.Fatalf("after reopen %+v %v, want >= %d due", s, err, len(acked))
	}
	t.Logf("killed after %d acknowledged jobs; %d stored", len(acked), s.Due)
}
