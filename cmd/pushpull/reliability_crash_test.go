package main

// Crash and restart suite: SIGKILL the real binary during a push burst,
// during dispatch, during bbolt commits and during shutdown; restart it on
// the same data directory and check, against the fake FCM's record, that
// every accepted job was delivered at least once, none after its expiry,
// and that duplicates stay within what was in flight.

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/pushpull/pushpull/providers/fake"
)

// crashScenario is one place to crash in.
type crashScenario struct {
	name string
	// perPush is the devices per notification: jobs per commit.
	perPush int
	// pushes is how many push requests the burst sends (0: until killed).
	pushes int
	// delay is how long the fake FCM takes per send.
	delay time.Duration
	// kill ends the process; it runs concurrently with the burst and
	// returns once the process is gone.
	kill func(t *testing.T, p *relProc, e *relEnv, accepted *atomic.Int64, rng *rand.Rand)
}

func TestReliabilityCrashRestart(t *testing.T) {
	n := iterations(1, 2, 20)
	scenarios := []crashScenario{
		{
			// Killed while push requests are arriving and being committed.
			name: "burst", perPush: 5, delay: 0,
			kill: func(t *testing.T, p *relProc, _ *relEnv, accepted *atomic.Int64, rng *rand.Rand) {
				want := int64(5 + rng.IntN(40))
				waitFor(t, 30*time.Second, "accepted pushes", func() bool { return accepted.Load() >= want })
				p.kill()
			},
		},
		{
			// Killed while the dispatcher has jobs leased and sends in
			// flight to a slow provider: the unacked ones come back.
			name: "dispatch", perPush: 10, pushes: 30, delay: 30 * time.Millisecond,
			kill: func(t *testing.T, p *relProc, e *relEnv, _ *atomic.Int64, rng *rand.Rand) {
				want := int64(20 + rng.IntN(150))
				waitFor(t, 30*time.Second, "deliveries", func() bool { return e.fcm.Delivered() >= want })
				p.kill()
			},
		},
		{
			// Large notifications (200 jobs per group commit) and a kill at
			// a random instant while several requests are being committed.
			name: "commit", perPush: 200, delay: 0,
			kill: func(t *testing.T, p *relProc, _ *relEnv, accepted *atomic.Int64, rng *rand.Rand) {
				waitFor(t, 30*time.Second, "first commit", func() bool { return accepted.Load() >= 1 })
				time.Sleep(time.Duration(rng.IntN(300)) * time.Millisecond) // a random instant, not a wait for an event
				p.kill()
			},
		},
		{
			// SIGTERM starts the graceful shutdown, SIGKILL lands while it
			// drains in-flight sends to a slow provider.
			name: "shutdown", perPush: 10, pushes: 30, delay: 50 * time.Millisecond,
			kill: func(t *testing.T, p *relProc, e *relEnv, _ *atomic.Int64, rng *rand.Rand) {
				waitFor(t, 30*time.Second, "deliveries", func() bool { return e.fcm.Delivered() >= 20 })
				draining := p.watch("shutting down")
				_ = p.cmd.Process.Signal(syscall.SIGTERM)
				select {
				case <-draining:
				case <-time.After(10 * time.Second):
					t.Fatalf("no shutdown line\n%s", p.logTail())
				}
				time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond) // a random instant in the drain
				p.kill()
			},
		},
	}
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			var tot verdict
			for i := range n {
				v := crashOnce(t, sc, i)
				tot.accepted += v.accepted
				tot.delivered += v.delivered
				tot.duplicates += v.duplicates
				tot.unsure += v.unsure
				tot.unsureDelivered += v.unsureDelivered
				tot.expiredKept += v.expiredKept
				if t.Failed() {
					return
				}
			}
			figure(t, "crash/%s kills=%d accepted_jobs=%d lost=0 late=0 duplicates=%d unanswered_jobs=%d (delivered %d) expired_jobs_never_sent=%d",
				sc.name, n, tot.accepted, tot.duplicates, tot.unsure, tot.unsureDelivered, tot.expiredKept)
		})
	}
}

// crashOnce runs one kill-and-restart cycle on a fresh data directory.
func crashOnce(t *testing.T, sc crashScenario, iter int) verdict {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	rng := rand.New(rand.NewPCG(seed, uint64(iter)))
	e := newRelEnv(t, "")
	e.fcm.SetDefault(fake.FCMBehavior{Delay: sc.delay})
	p := e.start(t, nil)
	api := newRelAPI(p.api)
	led := newLedger()

	// Every fifth notification expires after 2 s and the fake refuses its
	// tokens until then: they are still queued when the gateway dies and
	// must never be delivered once past their expiry.
	const expiring = 2
	var accepted atomic.Int64
	var seq atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				s := int(seq.Add(1))
				if sc.pushes > 0 && s > sc.pushes {
					return
				}
				toks := make([]string, sc.perPush)
				for j := range toks {
					toks[j] = fmt.Sprintf("crash-%s-%d-%d-%d:APA91b", sc.name, iter, s, j)
				}
				exp, isExp := 3600, s%5 == 0
				if isExp {
					exp = expiring
					for _, tok := range toks {
						e.fcm.Script(tok, fake.FCMBehavior{ErrorCode: fake.FCMUnavailable})
					}
				}
				led.sent(toks, time.Duration(exp)*time.Second)
				status, raw, err := api.do(ctx, http.MethodPost, "/api/v1/push", pushBody(toks, exp, s))
				if err != nil {
					return // the process is gone: these stay unsure
				}
				var res pushResult
				if status != http.StatusAccepted || json.Unmarshal(raw, &res) != nil || len(res.Results) != 1 {
					t.Errorf("push %d: %d %s", s, status, raw)
					return
				}
				led.accept(toks, time.Now(), time.Duration(exp)*time.Second, isExp, res.Results[0].ID)
				accepted.Add(1)
			}
		})
	}
	sc.kill(t, p, e, &accepted, rng)
	killedAt := time.Now()
	cancel()
	wg.Wait()

	// Restart on the same directory; the expiring tokens become
	// deliverable only once they are past their expiry.
	p = e.start(t, nil)
	api = newRelAPI(p.api)
	waitFor(t, 10*time.Second, "expiring pushes to expire", func() bool {
		return time.Since(killedAt) > (expiring+1)*time.Second
	})
	led.mu.Lock()
	for tok := range led.expiring {
		e.fcm.Script(tok, fake.FCMBehavior{})
	}
	ids := append([]string(nil), led.ids...)
	led.mu.Unlock()

	waitFor(t, 60*time.Second, "every accepted job delivered", func() bool {
		return len(led.check(e.fcm.Received(), killedAt).missing) == 0
	})
	// The expiring notifications must settle (expired/dead), not linger.
	for _, id := range ids {
		waitFor(t, 30*time.Second, "notification "+id+" settled", func() bool {
			status, raw, err := api.do(context.Background(), http.MethodGet, "/api/v1/push/"+id, nil)
			if err != nil || status != http.StatusOK {
				return false
			}
			var st struct {
				States map[string]int `json:"states"`
			}
			_ = json.Unmarshal(raw, &st)
			return st.States["queued"]+st.States["retrying"]+st.States["sending"] == 0
		})
	}
	v := led.check(e.fcm.Received(), killedAt)
	if len(v.late) > 0 {
		t.Errorf("seed %d: %d deliveries after their expiry, e.g. %s", seed, len(v.late), v.late[0])
	}
	if len(v.stranger) > 0 {
		t.Errorf("seed %d: deliveries to tokens never pushed: %v", seed, v.stranger[:1])
	}
	if max := relWorkers * relLeaseBatch; v.duplicates > max {
		t.Errorf("seed %d: %d duplicates, more than the %d jobs that can be in flight", seed, v.duplicates, max)
	}
	if v.accepted == 0 {
		t.Errorf("seed %d: nothing was accepted before the kill", seed)
	}
	t.Logf("iteration %d (seed %d): accepted %d jobs, %d duplicates, %d unanswered (%d delivered), %d expiring",
		iter, seed, v.accepted, v.duplicates, v.unsure, v.unsureDelivered, v.expiredKept)
	p.kill()
	return v
}
