package push

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/queue"
)

// Result names of ResultCount.Result besides the providers.Class names
// (delivered, retry, token_invalid, rejected).
const (
	// ResultPaused: the job was put back unsent because the circuit breaker
	// held its provider.
	ResultPaused = "paused"
)

// Reason labels that the dispatcher sets itself (ResultCount.Reason).
const (
	ReasonNone        = "none"        // a delivered push
	ReasonOther       = "other"       // a reason that is not a short identifier, or past the key bound
	ReasonNoApp       = "no_app"      // the job's app_id has no configured app
	ReasonUndecodable = "undecodable" // the stored payload does not decode
	ReasonBreaker     = "circuit_open"
	// AppUnknown is the app label of jobs whose app_id is not configured,
	// so that arbitrary app ids from requests cannot grow the key set.
	AppUnknown = "unknown"
)

// maxResultKeys bounds the distinct (app, result, reason) keys one provider
// keeps, so an odd provider reason cannot grow them (and the metrics label
// sets) without bound; past it new reasons count as ReasonOther.
const maxResultKeys = 256

// ResultCount is how many pushes of one app got one result for one reason.
type ResultCount struct {
	AppID  string `json:"app_id"`
	Result string `json:"result"`
	// Reason is the provider's reason when it is a short identifier
	// ("Unregistered", "UNREGISTERED", "TooManyRequests", "timeout"),
	// "status_<code>" when there is none, or one of the Reason* constants.
	Reason string `json:"reason"`
	Count  uint64 `json:"count"`
}

// Histogram is a snapshot of the provider Send latency: one observation per
// Send call, i.e. per chunk of up to ProviderConcurrency pushes sent in
// parallel.
type Histogram struct {
	// Bounds are the buckets' upper bounds in seconds, ascending.
	Bounds []float64 `json:"bounds"`
	// Counts[i] counts observations in (Bounds[i-1], Bounds[i]]; the last
	// element, one past Bounds, counts those above every bound. Not
	// cumulative.
	Counts []uint64 `json:"counts"`
	// Count and Sum (seconds) are over every observation.
	Count uint64  `json:"count"`
	Sum   float64 `json:"sum"`
}

// latencyBounds returns the send latency buckets (seconds): from a fast
// HTTP/2 answer to a SendTimeout.
func latencyBounds() []float64 {
	return []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
}

// histogram counts durations in fixed buckets with atomics: observed from
// concurrent sends without a lock.
type histogram struct {
	bounds []float64
	counts []atomic.Uint64 // len(bounds)+1
	sumNs  atomic.Uint64
}

func newHistogram(bounds []float64) *histogram {
	return &histogram{bounds: bounds, counts: make([]atomic.Uint64, len(bounds)+1)}
}

func (h *histogram) observe(d time.Duration) {
	d = max(d, 0)
	s := d.Seconds()
	i, _ := slices.BinarySearch(h.bounds, s) // first bound >= s
	h.counts[i].Add(1)
	h.sumNs.Add(uint64(d))
}

func (h *histogram) snapshot() Histogram {
	out := Histogram{Bounds: slices.Clone(h.bounds), Counts: make([]uint64, len(h.counts))}
	for i := range h.counts {
		out.Counts[i] = h.counts[i].Load()
		out.Count += out.Counts[i]
	}
	out.Sum = time.Duration(h.sumNs.Load()).Seconds()
	return out
}

type resultKey struct{ app, result, reason string }

// health is what a provider's answers say about it, for /api/v1/queue and
// the metrics: counts per (app, result, reason), last success and failure.
type health struct {
	mu          sync.Mutex
	results     map[resultKey]uint64
	lastSuccess time.Time
	lastFailure time.Time
	lastError   string
}

// tally adds n to key, folding new reasons into ReasonOther past the bound.
// The caller holds h.mu.
func (h *health) tallyLocked(k resultKey, n uint64) {
	if h.results == nil {
		h.results = make(map[resultKey]uint64)
	}
	if _, ok := h.results[k]; !ok && len(h.results) >= maxResultKeys {
		k.reason = ReasonOther
	}
	h.results[k] += n
}

// tallyJobs counts jobs settled without a provider answer (paused, no
// app, undecodable).
func (p *provider) tallyJobs(jobs []*queue.Job, result, reason string, appKnown bool) {
	if len(jobs) == 0 {
		return
	}
	p.health.mu.Lock()
	defer p.health.mu.Unlock()
	for _, j := range jobs {
		app := j.AppID
		if !appKnown {
			app = AppUnknown
		}
		p.health.tallyLocked(resultKey{app, result, reason}, 1)
	}
}

// account records one chunk's answers: the class counters, the breakdown
// per app and reason, and the last success and failure. A provider that
// answers (delivered, or token invalid) works; retry and rejected answers
// are failures. After an aborted send (Stop), retry results are not the
// provider's doing and are not counted.
func (p *provider) account(now time.Time, jobs []*queue.Job, results []providers.Result, aborted bool) {
	type agg struct {
		k resultKey
		n uint64
	}
	var local []agg
	add := func(k resultKey) {
		for i := range local {
			if local[i].k == k {
				local[i].n++
				return
			}
		}
		local = append(local, agg{k, 1})
	}
	success, failure := false, -1
	for i, r := range results {
		switch r.Class {
		case providers.Delivered:
			p.delivered.Add(1)
			success = true
		case providers.TokenInvalid:
			p.invalid.Add(1)
			success = true
		case providers.Rejected:
			p.rejected.Add(1)
			failure = max(failure, i)
		default:
			if aborted {
				continue
			}
			p.retried.Add(1)
			failure = max(failure, i)
		}
		add(resultKey{jobs[i].AppID, resultName(r.Class), reasonLabel(r)})
	}
	p.health.mu.Lock()
	defer p.health.mu.Unlock()
	for _, a := range local {
		p.health.tallyLocked(a.k, a.n)
	}
	if success {
		p.health.lastSuccess = now
	}
	if failure >= 0 {
		p.health.lastFailure = now
		p.health.lastError = describeFailure(results[failure], jobs[failure].Token)
	}
}

// resultName is the result label of a class; an unclassified answer is
// handled as a retry by settle and named so.
func resultName(c providers.Class) string {
	if c < providers.Delivered || c > providers.Rejected {
		return providers.Retry.String()
	}
	return c.String()
}

// reasonLabel keeps label values few and safe: a provider reason that is a
// short identifier, else the HTTP status, else ReasonOther.
func reasonLabel(r providers.Result) string {
	if r.Class == providers.Delivered {
		return ReasonNone
	}
	if isIdent(r.Reason) {
		return r.Reason
	}
	if r.Status != 0 {
		return fmt.Sprintf("status_%d", r.Status)
	}
	return ReasonOther
}

func isIdent(s string) bool {
	if s == "" || len(s) > 48 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// maxErrorLen bounds LastError: an error text may embed a response body.
const maxErrorLen = 300

// describeFailure renders a failed answer for LastError, with the device
// token redacted wherever the error text carries it (an APNs URL does).
func describeFailure(r providers.Result, token string) string {
	msg := resultName(r.Class) + ": " + reasonOf(r)
	if r.Status != 0 && r.Reason != "" {
		msg += fmt.Sprintf(" (status %d)", r.Status)
	}
	if len(token) > 8 {
		msg = strings.ReplaceAll(msg, token, redact(token))
	}
	if len(msg) > maxErrorLen {
		msg = msg[:maxErrorLen] + "…"
	}
	return msg
}

// healthStats fills the health part of st.
func (p *provider) healthStats(st *ProviderStats) {
	st.Latency = p.latency.snapshot()
	p.health.mu.Lock()
	defer p.health.mu.Unlock()
	st.Results = make([]ResultCount, 0, len(p.health.results))
	for k, n := range p.health.results {
		st.Results = append(st.Results, ResultCount{AppID: k.app, Result: k.result, Reason: k.reason, Count: n})
	}
	slices.SortFunc(st.Results, func(a, b ResultCount) int {
		return cmp.Or(cmp.Compare(a.AppID, b.AppID), cmp.Compare(a.Result, b.Result), cmp.Compare(a.Reason, b.Reason))
	})
	if t := p.health.lastSuccess; !t.IsZero() {
		t = t.UTC()
		st.LastSuccess = &t
	}
	if t := p.health.lastFailure; !t.IsZero() {
		t = t.UTC()
		st.LastFailure = &t
	}
	st.LastError = p.health.lastError
}

// Running reports whether the dispatcher is started and not stopped: the
// readiness of the push half of the gateway.
func (s *Service) Running() bool {
	s.life.Lock()
	defer s.life.Unlock()
	return s.started && !s.stopped
}

// noteFailure records a failure that is not one push's answer (a broken
// batch answer).
func (p *provider) noteFailure(now time.Time, msg string) {
	p.health.mu.Lock()
	defer p.health.mu.Unlock()
	p.health.lastFailure = now
	p.health.lastError = msg
}
