package push

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// SignatureHeader carries the HMAC-SHA256 of a feedback body:
// "sha256=<hex>", keyed with Options.FeedbackSecret.
const SignatureHeader = "X-Pushpull-Signature"

// Report is the body POSTed to the feedback webhook when a provider calls
// a token invalid and the device is removed. User and DeviceID are empty
// for direct device targets that were not in the registry.
type Report struct {
	User     string `json:"user"`
	DeviceID string `json:"device_id"`
	Platform string `json:"platform"`
	AppID    string `json:"app_id,omitempty"`
	Token    string `json:"token"`
	Reason   string `json:"reason"`
	// Origin is the job's origin (DeviceTarget.Origin), when it had one.
	Origin string `json:"origin,omitempty"`
}

// Sign returns the signature header value of body under secret, for
// webhook receivers (compare with hmac.Equal).
func Sign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// feedback sends Reports one by one from a bounded queue, on one goroutine
// owned by the Service (started by Start, stopped by Stop).
type feedback struct {
	url     string
	secret  []byte
	client  *http.Client
	retries int
	backoff time.Duration
	log     *slog.Logger

	mu      sync.Mutex
	ch      chan Report
	closed  bool
	started bool
	ctx     context.Context
	cancel  context.CancelFunc
	done    chan struct{}
}

func newFeedback(o Options) *feedback {
	f := &feedback{
		url: o.FeedbackURL, secret: o.FeedbackSecret, retries: o.FeedbackRetries,
		backoff: o.FeedbackBackoff, log: o.Logger,
		client: &http.Client{Timeout: o.FeedbackTimeout},
		ch:     make(chan Report, o.FeedbackQueue),
		done:   make(chan struct{}),
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	return f
}

func (f *feedback) start() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.url == "" || f.started || f.closed {
		return
	}
	f.started = true
	go f.loop()
}

// enqueue hands r to the sender without blocking the dispatcher; a full
// queue drops it with a log line (the token is removed regardless).
func (f *feedback) enqueue(r Report) {
	if f.url == "" {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return
	}
	select {
	case f.ch <- r:
	default:
		f.log.Warn("feedback queue full: report dropped", "platform", r.Platform, "token", redact(r.Token))
	}
}

// stop lets the sender finish what is queued; when ctx ends first, the
// rest is dropped.
func (f *feedback) stop(ctx context.Context) error {
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		return nil
	}
	f.closed = true
	close(f.ch)
	started := f.started
	f.mu.Unlock()
	if !started {
		f.cancel()
		return nil
	}
	select {
	case <-f.done:
		f.cancel()
		return nil
	case <-ctx.Done():
		f.cancel()
		<-f.done
		return ctx.Err()
	}
}

func (f *feedback) loop() {
	defer close(f.done)
	for r := range f.ch {
		if f.ctx.Err() != nil {
			continue // stopping: drain without sending
		}
		f.deliver(r)
	}
}

// deliver POSTs one report, retrying failures (network errors and non-2xx
// answers) with doubling delays.
func (f *feedback) deliver(r Report) {
	body, err := json.Marshal(r)
	if err != nil {
		f.log.Error("encoding feedback", "err", err)
		return
	}
	delay := f.backoff
	for attempt := 0; ; attempt++ {
		err := f.post(body)
		if err == nil {
			return
		}
		if attempt >= f.retries {
			f.log.Error("feedback webhook failed; report dropped", "attempts", attempt+1,
				"platform", r.Platform, "token", redact(r.Token), "err", err)
			return
		}
		f.log.Warn("feedback webhook failed; retrying", "attempt", attempt+1, "in", delay, "err", err)
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-f.ctx.Done():
			t.Stop()
			return
		}
		delay *= 2
	}
}

func (f *feedback) post(body []byte) error {
	req, err := http.NewRequestWithContext(f.ctx, http.MethodPost, f.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "pushpull-feedback")
	if len(f.secret) > 0 {
		req.Header.Set(SignatureHeader, Sign(f.secret, body))
	}
	res, err := f.client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	res.Body.Close()
	if res.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", res.Status)
	}
	return nil
}
