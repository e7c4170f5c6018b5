package push

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
)

const (
	// settleTimeout bounds the queue and registry writes after a send;
	// they use their own context so that a send aborted by Stop still
	// records what was delivered.
	settleTimeout = 30 * time.Second
	// settleParallel is how many single-job queue writes (Retry, Dead,
	// Drop) of one batch run at once: concurrent writes share one group
	// commit, sequential ones would pay one fsync each.
	settleParallel = 64
	// minWait keeps an idle worker from spinning when the queue reports a
	// due job that it cannot lease yet (being written by someone else).
	minWait = 5 * time.Millisecond
	// errorWait is the pause after a failed Lease (a broken DB), so that a
	// persistent error does not become a hot loop of log lines.
	errorWait = time.Second
)

// worker leases and dispatches batches until Stop. When the queue has
// nothing due it sleeps until the next job is due, the queue signals new
// work, or a sibling that found a full batch pokes it: no busy polling.
func (s *Service) worker() {
	defer s.workers.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for s.leaseCtx.Err() == nil {
		n, err := s.dispatchOnce(s.leaseCtx)
		wait := s.opts.MaxIdle
		switch {
		case errors.Is(err, queue.ErrClosed):
			s.log.Error("queue closed under the dispatcher; worker stops")
			return
		case err != nil && s.leaseCtx.Err() == nil:
			s.log.Error("leasing jobs failed", "err", err)
			wait = errorWait
		case n > 0:
			s.poke() // there may be more: let an idle sibling look too
			continue
		default:
			if at, ok := s.q.NextDue(); ok {
				wait = min(wait, max(at.Sub(s.opts.Now()), minWait))
			}
		}
		timer.Reset(wait)
		select {
		case <-s.leaseCtx.Done():
			return
		case <-s.q.Wakeup():
		case <-s.kick:
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
	}
}

func (s *Service) poke() {
	select {
	case s.kick <- struct{}{}:
	default:
	}
}

// dispatchOnce leases one batch, sends it and settles every job of it. It
// returns how many jobs it leased.
func (s *Service) dispatchOnce(ctx context.Context) (int, error) {
	jobs, err := s.q.Lease(ctx, s.opts.LeaseBatch)
	if len(jobs) > 0 {
		s.dispatch(jobs)
	}
	return len(jobs), err
}

// dispatch sends a leased batch: grouped per platform, each group cut into
// chunks of at most ProviderConcurrency, all chunks in parallel (bounded
// per provider by its semaphore), so a slow platform does not hold back
// the jobs of another.
func (s *Service) dispatch(jobs []*queue.Job) {
	groups := make(map[string][]*queue.Job, 2)
	for _, j := range jobs {
		groups[j.Platform] = append(groups[j.Platform], j)
	}
	var wg sync.WaitGroup
	for platform, js := range groups {
		p := s.provs[platform]
		if p == nil {
			s.deadAll(js, fmt.Sprintf("no provider configured for platform %q", platform))
			continue
		}
		var ok []*queue.Job
		for _, j := range js {
			if p.p.HasApp(j.AppID) {
				ok = append(ok, j)
			} else {
				p.tallyJobs([]*queue.Job{j}, providers.Rejected.String(), ReasonNoApp, false)
				s.deadAll([]*queue.Job{j}, fmt.Sprintf("no %s app configured for app_id %q", platform, j.AppID))
			}
		}
		if left, reason, paused := p.paused(s.opts.Now()); paused {
			p.pausedJobs.Add(uint64(len(ok)))
			p.tallyJobs(ok, ResultPaused, ReasonBreaker, true)
			s.postponeAll(ok, left, fmt.Sprintf("%s paused: %s", platform, reason))
			continue
		}
		for start := 0; start < len(ok); start += p.limit {
			chunk := ok[start:min(start+p.limit, len(ok))]
			wg.Go(func() { s.sendChunk(p, chunk) })
		}
	}
	wg.Wait()
}

// sendChunk sends one chunk through its provider and settles its jobs.
func (s *Service) sendChunk(p *provider, jobs []*queue.Job) {
	msgs := make([]providers.Message, 0, len(jobs))
	sendable := make([]*queue.Job, 0, len(jobs))
	var prev []byte
	var prevN *providers.Notification
	for _, j := range jobs {
		// Jobs of one fan-out share their payload bytes: decode them once.
		n := prevN
		if prevN == nil || !bytes.Equal(prev, j.Payload) {
			n = new(providers.Notification)
			if err := json.Unmarshal(j.Payload, n); err != nil {
				p.tallyJobs([]*queue.Job{j}, providers.Rejected.String(), ReasonUndecodable, true)
				s.deadAll([]*queue.Job{j}, "undecodable payload: "+err.Error())
				continue
			}
			prev, prevN = j.Payload, n
		}
		sendable = append(sendable, j)
		msgs = append(msgs, providers.Message{
			Target:       providers.Target{ID: j.ID, Platform: j.Platform, AppID: j.AppID, Token: j.Token, Sandbox: j.Sandbox},
			Notification: n,
		})
	}
	if len(msgs) == 0 {
		return
	}
	weight := int64(len(msgs))
	if err := p.sem.Acquire(s.sendCtx, weight); err != nil {
		return // Stop gave up waiting: the jobs stay leased and come back
	}
	ctx, cancel := context.WithTimeout(s.sendCtx, s.opts.SendTimeout)
	start := time.Now()
	results := p.p.Send(ctx, msgs)
	took := time.Since(start)
	cancel()
	p.sem.Release(weight)
	aborted := s.sendCtx.Err() != nil
	if len(results) != len(msgs) {
		s.log.Error("provider answered a different number of results; batch retried",
			"platform", p.name, "sent", len(msgs), "results", len(results))
		msg := p.name + ": provider answered " + fmt.Sprint(len(results)) + " results for " + fmt.Sprint(len(msgs))
		p.noteFailure(s.opts.Now(), msg)
		s.retryAll(sendable, 0, msg)
		return
	}
	if !aborted {
		p.latency.observe(took)
		if pause, reason := p.observe(s.opts.Now(), results); pause > 0 {
			s.log.Warn("provider paused: most of a batch must be retried",
				"platform", p.name, "pause", pause, "reason", reason, "batch", len(results))
		}
	}
	p.account(s.opts.Now(), sendable, results, aborted)
	s.settle(p, sendable, results, aborted)
}

// settle acts on each result: delivered -> ack (one write for the whole
// chunk); retry -> reschedule; token invalid -> remove device, drop job,
// feedback; rejected -> dead letter. After an aborted send, retry results
// are left alone: those jobs stay leased and come back after the lease
// timeout or a restart, without an attempt counted against them.
func (s *Service) settle(p *provider, jobs []*queue.Job, results []providers.Result, aborted bool) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	var acked []string
	var retried int
	var firstRetry string
	var wg sync.WaitGroup
	sem := make(chan struct{}, settleParallel)
	async := func(f func()) {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f()
		})
	}
	for i, j := range jobs {
		r := results[i]
		reason := p.name + ": " + reasonOf(r)
		switch r.Class {
		case providers.Delivered:
			acked = append(acked, j.ID)
		case providers.TokenInvalid:
			async(func() { s.invalidate(ctx, j, reason) })
		case providers.Rejected:
			s.log.Warn("push rejected: dead letter, token kept", "platform", p.name, "app_id", j.AppID,
				"job", j.ID, "token", redact(j.Token), "reason", reason, "status", r.Status)
			async(func() { s.settleErr(j, "dead", s.q.Dead(ctx, j, reason)) })
		default:
			if aborted {
				continue
			}
			retried++
			if firstRetry == "" {
				firstRetry = reason
			}
			async(func() { s.settleErr(j, "retry", s.q.Retry(ctx, j, r.RetryAfter, reason)) })
		}
	}
	if len(acked) > 0 {
		if err := s.q.Ack(ctx, acked...); err != nil {
			s.log.Error("acking delivered jobs failed; they will be sent again", "jobs", len(acked), "err", err)
		}
	}
	wg.Wait()
	if retried > 0 {
		s.log.Info("pushes to retry", "platform", p.name, "jobs", retried, "reason", firstRetry)
	}
	s.log.Debug("batch sent", "platform", p.name, "jobs", len(jobs), "delivered", len(acked), "retry", retried)
}

// invalidate removes a dead token from the registry, drops its job and
// reports it to the feedback webhook.
func (s *Service) invalidate(ctx context.Context, j *queue.Job, reason string) {
	rep := Report{User: j.User, DeviceID: j.DeviceID, Platform: j.Platform, AppID: j.AppID, Token: j.Token, Reason: reason, Origin: j.Origin}
	d, err := s.reg.RemoveToken(ctx, j.Platform, j.Token)
	switch {
	case err == nil:
		rep.User, rep.DeviceID = d.User, d.ID
		s.log.Info("token invalid: device removed", "platform", j.Platform, "user", d.User,
			"device_id", d.ID, "token", redact(j.Token), "reason", reason)
	case errors.Is(err, devices.ErrNotFound):
		s.log.Info("token invalid (not in the registry)", "platform", j.Platform,
			"token", redact(j.Token), "reason", reason)
	default:
		s.log.Error("removing invalid token failed", "platform", j.Platform, "token", redact(j.Token), "err", err)
	}
	s.settleErr(j, "drop", s.q.Drop(ctx, j, reason))
	s.fb.enqueue(rep)
	if s.opts.OnInvalidToken != nil {
		s.opts.OnInvalidToken(rep)
	}
}

func (s *Service) deadAll(jobs []*queue.Job, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	for _, j := range jobs {
		s.log.Warn("push cannot be sent: dead letter", "platform", j.Platform, "app_id", j.AppID,
			"job", j.ID, "token", redact(j.Token), "reason", reason)
	}
	s.parallel(jobs, func(j *queue.Job) { s.settleErr(j, "dead", s.q.Dead(ctx, j, reason)) })
}

func (s *Service) retryAll(jobs []*queue.Job, after time.Duration, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	s.parallel(jobs, func(j *queue.Job) { s.settleErr(j, "retry", s.q.Retry(ctx, j, after, reason)) })
}

// postponeAll puts jobs back unsent (their provider is paused) without
// using up an attempt: an outage of any length ends the jobs by their
// expiry, not by max_attempts.
func (s *Service) postponeAll(jobs []*queue.Job, after time.Duration, reason string) {
	ctx, cancel := context.WithTimeout(context.Background(), settleTimeout)
	defer cancel()
	s.parallel(jobs, func(j *queue.Job) { s.settleErr(j, "postpone", s.q.Postpone(ctx, j, after, reason)) })
}

func (s *Service) parallel(jobs []*queue.Job, f func(*queue.Job)) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, settleParallel)
	for _, j := range jobs {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			f(j)
		})
	}
	wg.Wait()
}

// settleErr logs a failed settle. The job stays leased and comes back
// after the lease timeout, so a failure here costs a resend, not a loss.
func (s *Service) settleErr(j *queue.Job, what string, err error) {
	if err == nil || errors.Is(err, queue.ErrNotFound) {
		return // not found: settled already (a lease timed out and another worker finished it)
	}
	s.log.Log(context.Background(), slog.LevelError, "settling job failed; it will come back", "op", what, "job", j.ID, "err", err)
}

func reasonOf(r providers.Result) string {
	switch {
	case r.Reason != "":
		return r.Reason
	case r.Err != nil:
		return r.Err.Error()
	case r.Status != 0:
		return fmt.Sprintf("status %d", r.Status)
	}
	return r.Class.String()
}

// redact keeps the first 8 characters of a token for logs.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
