package main

// Graceful restart under load: SIGTERM the real binary in the middle of a
// push burst (sends in flight to a slow provider), start it again on the
// same data directory, and check against the fake FCM that every push the
// gateway answered 202 was delivered at least once.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/pushpull/pushpull/providers/fake"
)

func TestGracefulRestartUnderLoad(t *testing.T) {
	t.Parallel()
	e := newRelEnv(t, "")
	// Slow sends: a SIGTERM finds some in flight.
	e.fcm.SetDefault(fake.FCMBehavior{Delay: 200 * time.Millisecond})
	p := e.start(t, nil)
	api := newRelAPI(p.api)

	// A live client, to see how it is told about the restart.
	status, raw, err := api.do(context.Background(), http.MethodPost, "/api/v1/tokens", []byte(`{"user":"restart-user"}`))
	if err != nil || status != 200 {
		t.Fatalf("token: %d %s %v", status, raw, err)
	}
	var tok struct {
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &tok); err != nil {
		t.Fatal(err)
	}
	ws, _, err := websocket.Dial(context.Background(), "ws://"+p.client+"/sub/ws?token="+tok.Token, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.CloseNow()
	wsClosed := make(chan error, 1)
	go func() {
		for {
			if _, _, err := ws.Read(context.Background()); err != nil {
				wsClosed <- err
				return
			}
		}
	}()

	led := newLedger()
	var accepted, refused atomic.Int64
	var seq atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				s := int(seq.Add(1))
				toks := make([]string, 5)
				for j := range toks {
					toks[j] = fmt.Sprintf("restart-%d-%d:APA91b", s, j)
				}
				led.sent(toks, time.Hour)
				status, raw, err := api.do(ctx, http.MethodPost, "/api/v1/push", pushBody(toks, 3600, s))
				switch {
				case err != nil:
					return // the listener is gone: these stay unsure
				case status == http.StatusAccepted:
					var res pushResult
					if json.Unmarshal(raw, &res) != nil || len(res.Results) != 1 {
						t.Errorf("push %d: %s", s, raw)
						return
					}
					led.accept(toks, time.Now(), time.Hour, false, res.Results[0].ID)
					accepted.Add(1)
				default:
					// Refused while draining (not accepted, so not owed).
					led.mu.Lock()
					for _, tk := range toks {
						delete(led.unsure, tk)
					}
					led.mu.Unlock()
					refused.Add(1)
				}
			}
		})
	}

	waitFor(t, 30*time.Second, "a burst in progress", func() bool {
		return accepted.Load() >= 60 && e.fcm.Delivered() >= 20
	})
	notDrained := p.watch("dispatcher did not drain")
	stopped := p.watch("pushpull stopped")
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("no exit after SIGTERM\n%s", p.logTail())
	}
	stoppedAt := time.Now()
	cancel()
	wg.Wait()
	select {
	case <-stopped:
	default:
		t.Fatalf("not a clean stop: %v\n%s", p.err, p.logTail())
	}
	if p.err != nil {
		t.Fatalf("exit status after SIGTERM: %v", p.err)
	}
	select {
	case <-notDrained:
		t.Errorf("the dispatcher did not drain within shutdown_timeout\n%s", p.logTail())
	default:
	}
	select {
	case err := <-wsClosed:
		var ce websocket.CloseError
		if websocket.CloseStatus(err) != websocket.StatusServiceRestart || !errors.As(err, &ce) ||
			!strings.Contains(ce.Reason, "reconnect_within_ms=") {
			t.Errorf("live client closed with %v, want 1012 with reconnect advice", err)
		}
	case <-time.After(5 * time.Second):
		t.Error("the live client was not closed")
	}

	// The same data directory, a new process: the queue drains the rest.
	before := e.fcm.Delivered()
	p = e.start(t, nil)
	waitFor(t, 60*time.Second, "every accepted push delivered", func() bool {
		return len(led.check(e.fcm.Received(), stoppedAt).missing) == 0
	})
	v := led.check(e.fcm.Received(), stoppedAt)
	if len(v.stranger) > 0 {
		t.Errorf("deliveries to tokens never pushed: %v", v.stranger[:1])
	}
	figure(t, "graceful-restart accepted_jobs=%d lost=0 duplicates=%d sent_after_restart=%d refused_requests_while_draining=%d unanswered_jobs=%d (delivered %d)",
		v.accepted, v.duplicates, e.fcm.Delivered()-before, refused.Load(), v.unsure, v.unsureDelivered)
	p.kill()
}
