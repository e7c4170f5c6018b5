package main

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// profiler is a running `perf record` attached to the server; stop ends it
// and waits, so the profile file is complete when stop returns.
type profiler struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// startPerf attaches perf to the server when env.perfOut is set; it returns
// nil (and no error) when profiling was not asked for. perf samples the
// server's user and kernel stacks at 999 Hz using Go's frame pointers, so
// it profiles the real process without a pprof endpoint in pushpull.
func startPerf(env *runEnv, s *server) (*profiler, error) {
	if env.perfOut == "" {
		return nil, nil
	}
	return startPerfPIDs(env, []int{s.cmd.Process.Pid})
}

// startPerfPIDs records the processes pids into one profile (perf report
// --sort comm,pid,symbol tells them apart).
func startPerfPIDs(env *runEnv, pids []int) (*profiler, error) {
	list := make([]string, len(pids))
	for i, pid := range pids {
		list[i] = strconv.Itoa(pid)
	}
	cmd := exec.Command("perf", "record", "-F", "999", "-g", "-q",
		"-p", strings.Join(list, ","), "-o", env.perfOut)
	cmd.Stdout, cmd.Stderr = env.stderr, env.stderr
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("perf: %w", err)
	}
	p := &profiler{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	// perf needs a moment to attach; without it the first samples are lost.
	// Poll for the output file rather than sleeping a fixed time.
	deadline := time.Now().Add(3 * time.Second)
	for time.Now().Before(deadline) {
		if st, err := os.Stat(env.perfOut); err == nil && st.Size() > 0 {
			break
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("perf record exited early (is perf installed and perf_event_paranoid ≤ 2?)")
		case <-time.After(20 * time.Millisecond): // poll interval
		}
	}
	return p, nil
}

// stop ends perf with SIGINT (it then writes its buffers) and waits.
// Safe on a nil profiler and when called twice.
func (p *profiler) stop() {
	if p == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}
