package relay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
)

// Pusher is what the relay hands its jobs to: push.Service.
type Pusher interface {
	// Validate checks one request as Push would, without storing it.
	Validate(r *push.Request) error
	// Push stores every job of reqs durably (one commit) or none.
	Push(ctx context.Context, reqs []push.Request) ([]push.Result, error)
}

// App maps a portal's app key (the tkey header: the mobile app's APP_ID,
// for example "Bitrix24" or a bundle id) to the apps pushpull sends with.
// An empty platform field means frames of that platform for this key are
// skipped as ReasonNoProviderApp.
type App struct {
	Key  string
	APNs string // an [[apns.app]] id
	FCM  string // an [[fcm.app]] id
	HMS  string // an [[hms.app]] id
}

// OriginPrefix marks the jobs the relay stores (queue.Job.Origin is
// OriginPrefix + the portal host of the frame's h= header), so that a dead
// token can be told to the portal it came from.
const OriginPrefix = "bitrix-relay:"

// Skip reasons of the service, beyond the parser's.
const (
	// ReasonNoProviderApp: the frame's app key (or its platform for that
	// key) is not mapped to a configured app.
	ReasonNoProviderApp Reason = "no_provider_app"
	// ReasonExpired: the frame's expiry had already passed.
	ReasonExpired Reason = "expired"
	// ReasonInvalid: the push service refused the frame (bad token, payload
	// over the provider's limit).
	ReasonInvalid Reason = "invalid"
)

// ServiceOptions configures a Service.
type ServiceOptions struct {
	// Apps maps app keys to pushpull apps; at least one.
	Apps []App
	// Parser configures the batch parser.
	Parser Options
	// DefaultExpiry is used for frames that carry none. Default 12 h (the
	// module's AddQueue default).
	DefaultExpiry time.Duration
	// MaxExpiry caps a frame's expiry (the push service refuses longer
	// ones). Default 28 days.
	MaxExpiry time.Duration
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger receives one line per batch. Default: discard.
	Logger *slog.Logger
}

// Validate reports the first invalid field by name.
func (o ServiceOptions) Validate() error {
	if len(o.Apps) == 0 {
		return fmt.Errorf("%w: Apps: at least one app mapping is required", ErrInvalidOptions)
	}
	seen := map[string]bool{}
	for i, a := range o.Apps {
		switch {
		case strings.TrimSpace(a.Key) == "":
			return fmt.Errorf("%w: Apps[%d].Key: empty", ErrInvalidOptions, i)
		case seen[a.Key]:
			return fmt.Errorf("%w: Apps[%d].Key: %q mapped twice", ErrInvalidOptions, i, a.Key)
		case a.APNs == "" && a.FCM == "" && a.HMS == "":
			return fmt.Errorf("%w: Apps[%d]: %q maps to no apns, fcm or hms app", ErrInvalidOptions, i, a.Key)
		}
		seen[a.Key] = true
	}
	switch {
	case o.DefaultExpiry < 0:
		return fmt.Errorf("%w: DefaultExpiry: negative", ErrInvalidOptions)
	case o.MaxExpiry < 0:
		return fmt.Errorf("%w: MaxExpiry: negative", ErrInvalidOptions)
	}
	return o.Parser.Validate()
}

// Service turns relay batches into push jobs. It is safe for concurrent
// use and starts no goroutine.
type Service struct {
	push   Pusher
	parser *Parser
	apps   map[string]App
	opts   ServiceOptions

	batches, frames, jobs atomic.Uint64
	mu                    sync.Mutex
	skips                 map[Reason]uint64
	layouts               map[Layout]uint64
}

// NewService validates o and returns a Service that hands jobs to p.
func NewService(p Pusher, o ServiceOptions) (*Service, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if o.DefaultExpiry == 0 {
		o.DefaultExpiry = 12 * time.Hour
	}
	if o.MaxExpiry == 0 {
		o.MaxExpiry = 28 * 24 * time.Hour
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	o.Parser.Now = o.Now
	parser, err := NewParser(o.Parser)
	if err != nil {
		return nil, err
	}
	s := &Service{push: p, parser: parser, apps: map[string]App{}, opts: o,
		skips: map[Reason]uint64{}, layouts: map[Layout]uint64{}}
	for _, a := range o.Apps {
		s.apps[a.Key] = a
	}
	return s, nil
}

// Outcome is what became of one batch.
type Outcome struct {
	Layout Layout
	// Frames is how many frames the batch held, Jobs how many jobs were
	// stored for them (one per frame).
	Frames, Jobs int
	// Skipped counts what did not become a job, by reason (parser reasons
	// and the service's own).
	Skipped map[Reason]int
	// NotificationIDs are the push service's ids, for GET /api/v1/push/{id}.
	NotificationIDs []string
}

// group is the frames that share a request: same content, app, expiry.
type group struct {
	n       *providers.Notification
	app     string
	expires time.Time
}

// Accept parses body (the MessageBody) and stores one job per usable
// frame, all in one commit: when it returns nil, every job is durable. An
// error means nothing was stored (the queue could not be written).
func (s *Service) Accept(ctx context.Context, body string) (Outcome, error) {
	b := s.parser.Parse(body)
	out := Outcome{Layout: b.Layout, Frames: len(b.Frames), Skipped: map[Reason]int{}}
	maps.Copy(out.Skipped, b.SkipCounts)

	now := s.opts.Now()
	var order []group
	reqs := map[group]*push.Request{}
	for i := range b.Frames {
		f := &b.Frames[i]
		app, reason := s.appFor(f)
		if reason != "" {
			out.Skipped[reason]++
			continue
		}
		expires := f.ExpiresAt
		if expires.IsZero() {
			expires = now.Add(s.opts.DefaultExpiry)
		}
		if !expires.After(now) {
			out.Skipped[ReasonExpired]++
			continue
		}
		if max := now.Add(s.opts.MaxExpiry); expires.After(max) {
			expires = max
		}
		g := group{n: f.Notification, app: app, expires: expires.Truncate(time.Second)}
		r := reqs[g]
		if r == nil {
			// At least a second: the truncation above must not turn a
			// live frame into "no expiry given" (0) or a negative one.
			r = &push.Request{Notification: *f.Notification, Expiry: max(g.expires.Sub(now), time.Second)}
			reqs[g] = r
			order = append(order, g)
		}
		r.Devices = append(r.Devices, push.DeviceTarget{Platform: f.Platform, Token: f.Token,
			AppID: app, Sandbox: f.Sandbox, Origin: OriginPrefix + f.Host})
	}

	batch := make([]push.Request, 0, len(order))
	for _, g := range order {
		r := reqs[g]
		dropped := s.validate(r)
		if dropped > 0 {
			out.Skipped[ReasonInvalid] += dropped
		}
		if len(r.Devices) > 0 {
			batch = append(batch, *r)
		}
	}
	if len(batch) > 0 {
		res, err := s.push.Push(ctx, batch)
		if err != nil {
			return out, fmt.Errorf("relay: storing %d requests: %w", len(batch), err)
		}
		for _, r := range res {
			out.Jobs += r.Jobs
			out.NotificationIDs = append(out.NotificationIDs, r.ID)
		}
	}
	s.count(out)
	return out, nil
}

// appFor resolves the pushpull app a frame goes out with.
func (s *Service) appFor(f *Frame) (string, Reason) {
	key, ok := f.ResolveApp(func(k string) bool { _, ok := s.apps[k]; return ok })
	if !ok {
		return "", ReasonNoProviderApp
	}
	a := s.apps[key]
	var id string
	switch f.Platform {
	case providers.PlatformAPNs:
		id = a.APNs
	case providers.PlatformFCM:
		id = a.FCM
	case platformHMS:
		id = a.HMS
	}
	if id == "" {
		return "", ReasonNoProviderApp
	}
	return id, ""
}

// validate removes the devices the push service refuses from r and
// returns how many it removed; when the content itself is refused, all
// are. One bad token must not cost the batch its other frames.
func (s *Service) validate(r *push.Request) int {
	before := len(r.Devices)
	// Tokens first, one by one and cheaply (the check Validate would make),
	// so that the loop below, which re-validates the whole request after
	// each refusal, runs once for all but pathological batches.
	kept := r.Devices[:0]
	for _, d := range r.Devices {
		if err := devices.Validate(devices.Device{User: "-", Platform: d.Platform, Token: d.Token, AppID: d.AppID}); err != nil {
			s.opts.Logger.Info("relay: frame refused", "platform", d.Platform, "token", redact(d.Token), "err", err)
			continue
		}
		kept = append(kept, d)
	}
	r.Devices = kept
	for len(r.Devices) > 0 {
		err := s.push.Validate(r)
		if err == nil {
			break
		}
		var fe *push.FieldError
		i, ok := -1, errors.As(err, &fe)
		if ok {
			i = deviceIndex(fe.Field)
		}
		if i < 0 || i >= len(r.Devices) {
			s.opts.Logger.Warn("relay: frames refused", "frames", len(r.Devices), "err", err)
			r.Devices = nil
			break
		}
		s.opts.Logger.Info("relay: frame refused", "platform", r.Devices[i].Platform,
			"token", redact(r.Devices[i].Token), "err", err)
		r.Devices = append(r.Devices[:i], r.Devices[i+1:]...)
	}
	return before - len(r.Devices)
}

// deviceIndex reads N from a field name "devices[N]…", or -1.
func deviceIndex(field string) int {
	rest, ok := strings.CutPrefix(field, "devices[")
	if !ok {
		return -1
	}
	num, _, ok := strings.Cut(rest, "]")
	if !ok {
		return -1
	}
	n, err := strconv.Atoi(num)
	if err != nil {
		return -1
	}
	return n
}

func (s *Service) count(out Outcome) {
	s.batches.Add(1)
	s.frames.Add(uint64(out.Frames))
	s.jobs.Add(uint64(out.Jobs))
	s.mu.Lock()
	defer s.mu.Unlock()
	s.layouts[out.Layout]++
	for r, n := range out.Skipped {
		s.skips[r] += uint64(n)
	}
}

// Stats are the service's counters since it was built.
type Stats struct {
	Batches, Frames, Jobs uint64
	Skipped               map[Reason]uint64
	Layouts               map[Layout]uint64
}

// Stats returns a copy of the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Stats{Batches: s.batches.Load(), Frames: s.frames.Load(), Jobs: s.jobs.Load(),
		Skipped: maps.Clone(s.skips), Layouts: maps.Clone(s.layouts)}
}

// redact keeps the first 8 characters of a secret for logs.
func redact(s string) string {
	if len(s) <= 8 {
		return s
	}
	return s[:8] + "…"
}
