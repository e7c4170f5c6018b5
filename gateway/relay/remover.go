package relay

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/gateway/push"
)

// RemovePath is the portal action that deletes a device token
// (Bitrix\Pull\Controller\Token::removeAction, namespace alias "api"). It
// runs without authentication or CSRF check on the portal side.
const RemovePath = "/bitrix/services/main/ajax.php?action=pull.api.token.remove"

// RemoverOptions configures a Remover.
type RemoverOptions struct {
	// Scheme is how portals are reached: "https" (default) or "http".
	Scheme string
	// Timeout bounds one call. Default 10s.
	Timeout time.Duration
	// Retries is how many times a failed call is repeated. Default 2;
	// negative means none.
	Retries int
	// Backoff is the delay before the first retry, doubled after. Default 2s.
	Backoff time.Duration
	// Queue bounds the calls waiting; past it they are dropped with a log
	// line (the portal forgets the token by itself after 14 days). Default
	// 1024.
	Queue int
	// Client is the HTTP client. Default: a client with Timeout.
	Client *http.Client
	// Logger receives failures. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid field by name.
func (o RemoverOptions) Validate() error {
	switch {
	case o.Scheme != "" && o.Scheme != "http" && o.Scheme != "https":
		return fmt.Errorf("%w: Scheme: %q is not http or https", ErrInvalidOptions, o.Scheme)
	case o.Timeout < 0:
		return fmt.Errorf("%w: Timeout: negative", ErrInvalidOptions)
	case o.Backoff < 0:
		return fmt.Errorf("%w: Backoff: negative", ErrInvalidOptions)
	case o.Queue < 0:
		return fmt.Errorf("%w: Queue: negative", ErrInvalidOptions)
	}
	return nil
}

// Remover tells portals that a token they sent is dead, by calling their
// token-remove action, from a bounded queue on one goroutine it owns.
// Enqueue never blocks, so it can be called from the push dispatcher.
type Remover struct {
	o    RemoverOptions
	ch   chan removal
	done chan struct{}
	ctx  context.Context
	stop context.CancelFunc

	mu     sync.Mutex
	closed bool

	sent, failed, dropped atomic.Uint64
}

type removal struct{ host, token string }

// NewRemover validates o and starts the sender.
func NewRemover(o RemoverOptions) (*Remover, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.Scheme == "" {
		o.Scheme = "https"
	}
	if o.Timeout == 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Retries == 0 {
		o.Retries = 2
	}
	if o.Backoff == 0 {
		o.Backoff = 2 * time.Second
	}
	if o.Queue == 0 {
		o.Queue = 1024
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	r := &Remover{o: o, ch: make(chan removal, o.Queue), done: make(chan struct{})}
	r.ctx, r.stop = context.WithCancel(context.Background())
	go r.loop()
	return r, nil
}

// OnInvalidToken is the push service's hook (push.Options.OnInvalidToken):
// reports of relay jobs become calls to their portal; others are ignored.
func (r *Remover) OnInvalidToken(rep push.Report) {
	host, ok := strings.CutPrefix(rep.Origin, OriginPrefix)
	if !ok {
		return
	}
	r.Enqueue(host, rep.Token)
}

// Enqueue schedules a call telling host that token is dead. Hosts that are
// not a plain host[:port] (the h= header is the portal's word) are refused
// with a log line, so a batch cannot point the relay at arbitrary URLs.
func (r *Remover) Enqueue(host, token string) {
	if !validHost(host) {
		r.dropped.Add(1)
		r.o.Logger.Warn("relay: token not reported: frame had no usable portal host", "host", host, "token", redact(token))
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	select {
	case r.ch <- removal{host, token}:
	default:
		r.dropped.Add(1)
		r.o.Logger.Warn("relay: token-remove queue full: call dropped", "host", host, "token", redact(token))
	}
}

// validHost accepts "name", "name:port", "[v6]:port" and nothing with a
// path, user info, query or spaces.
func validHost(h string) bool {
	if h == "" || len(h) > 255 || strings.ContainsAny(h, "/\\@?#% \t\r\n") {
		return false
	}
	u, err := url.Parse("https://" + h)
	if err != nil || u.Host != h || u.Hostname() == "" {
		return false
	}
	if p := u.Port(); p != "" {
		if _, err := net.LookupPort("tcp", p); err != nil {
			return false
		}
	}
	return true
}

func (r *Remover) loop() {
	defer close(r.done)
	for rm := range r.ch {
		if err := r.call(rm); err != nil {
			r.failed.Add(1)
			r.o.Logger.Warn("relay: telling the portal about a dead token failed", "host", rm.host,
				"token", redact(rm.token), "err", err)
			continue
		}
		r.sent.Add(1)
	}
}

func (r *Remover) call(rm removal) error {
	target := r.o.Scheme + "://" + rm.host + RemovePath
	form := url.Values{"token": {rm.token}}.Encode()
	wait := r.o.Backoff
	var err error
	for attempt := 0; ; attempt++ {
		err = r.post(target, form)
		if err == nil || attempt >= r.o.Retries {
			return err
		}
		select {
		case <-time.After(wait):
			wait *= 2
		case <-r.ctx.Done():
			return err
		}
	}
}

func (r *Remover) post(target, form string) error {
	req, err := http.NewRequestWithContext(r.ctx, http.MethodPost, target, strings.NewReader(form))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := r.o.Client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("portal answered %s", resp.Status)
	}
	return nil
}

// RemoverStats are the Remover's counters.
type RemoverStats struct{ Sent, Failed, Dropped uint64 }

// Stats returns the counters.
func (r *Remover) Stats() RemoverStats {
	return RemoverStats{Sent: r.sent.Load(), Failed: r.failed.Load(), Dropped: r.dropped.Load()}
}

// Close lets queued calls finish within ctx, then abandons the rest. It is
// idempotent.
func (r *Remover) Close(ctx context.Context) error {
	r.mu.Lock()
	if !r.closed {
		r.closed = true
		close(r.ch)
	}
	r.mu.Unlock()
	select {
	case <-r.done:
		r.stop()
		return nil
	case <-ctx.Done():
		r.stop()
		<-r.done
		return ctx.Err()
	}
}
