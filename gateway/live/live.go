package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
)

// Channel names of the native protocol.
const (
	SharedChannel = "shared"
	userPrefix    = "user:"
)

// UserChannel is the private channel of user.
func UserChannel(user string) string { return userPrefix + user }

// Pusher is the push service as live uses it (push.Service implements it).
type Pusher interface {
	Push(ctx context.Context, reqs []push.Request) ([]push.Result, error)
}

// Options configure a Service.
type Options struct {
	// WatchTTL is a watch's lifetime unless extended. Default 1860s.
	WatchTTL time.Duration
	// MaxWatchTTL caps the ttl a backend may ask for. Default 24h.
	MaxWatchTTL time.Duration
	// MaxConnsPerUser bounds live connections per user. Default 32.
	MaxConnsPerUser int
	// DefaultEventExpiry is how long an event is kept for resume when it
	// gives no expiry. Default 24h.
	DefaultEventExpiry time.Duration
	// MaxEventExpiry caps an event's expiry. Default 7 days.
	MaxEventExpiry time.Duration
	// MaxAckTimeout caps ack_timeout. Default 1h.
	MaxAckTimeout time.Duration
	// MaxPendingAcks bounds events waiting for acks; past it the push goes
	// out at once. Default 100000.
	MaxPendingAcks int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Logger. Default: discard.
	Logger *slog.Logger

	// Bus, Watches, Presence and Acks share live state between the nodes of a
	// cluster (see seams.go). nil: this process alone (events go straight
	// to the hub, watches and presence are in memory).
	Bus      Bus
	Watches  WatchStore
	Presence SharedPresence
	Acks     AckRelay
}

func (o *Options) setDefaults() {
	if o.WatchTTL == 0 {
		o.WatchTTL = 1860 * time.Second
	}
	if o.MaxWatchTTL == 0 {
		o.MaxWatchTTL = 24 * time.Hour
	}
	if o.MaxConnsPerUser == 0 {
		o.MaxConnsPerUser = 32
	}
	if o.DefaultEventExpiry == 0 {
		o.DefaultEventExpiry = 24 * time.Hour
	}
	if o.MaxEventExpiry == 0 {
		o.MaxEventExpiry = 7 * 24 * time.Hour
	}
	if o.MaxAckTimeout == 0 {
		o.MaxAckTimeout = time.Hour
	}
	if o.MaxPendingAcks == 0 {
		o.MaxPendingAcks = 100000
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate names the first bad option.
func (o Options) Validate() error {
	for _, d := range []struct {
		name string
		v    time.Duration
	}{{"watch_ttl", o.WatchTTL}, {"max_watch_ttl", o.MaxWatchTTL}, {"default_event_expiry", o.DefaultEventExpiry},
		{"max_event_expiry", o.MaxEventExpiry}, {"max_ack_timeout", o.MaxAckTimeout}} {
		if d.v < 0 {
			return fmt.Errorf("%s: must not be negative", d.name)
		}
	}
	if o.MaxConnsPerUser < 0 || o.MaxPendingAcks < 0 {
		return errors.New("max_conns_per_user: must not be negative")
	}
	return nil
}

// Service publishes events and keeps watches, presence and pending acks.
// It is safe for concurrent use.
type Service struct {
	o    Options
	hub  *hub.Hub
	push Pusher

	watch    WatchStore
	presence *presence
	bus      Bus
	shared   SharedPresence
	relay    AckRelay

	ackMu sync.Mutex
	acks  map[string]*pendingAck // mid -> users who have not acked yet

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

type pendingAck struct {
	users map[string]struct{}
	req   push.Request
	timer *time.Timer
}

// New returns a service publishing through h; p may be nil (no pushes).
func New(o Options, h *hub.Hub, p Pusher) (*Service, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, errors.New("live: hub is required")
	}
	o.setDefaults()
	s := &Service{o: o, hub: h, push: p, watch: o.Watches, presence: newPresence(),
		bus: o.Bus, shared: o.Presence, acks: map[string]*pendingAck{}, stop: make(chan struct{})}
	if s.watch == nil {
		s.watch = newWatches()
	}
	if s.bus == nil {
		s.bus = localBus{h}
	}
	if s.relay = o.Acks; s.relay != nil {
		s.relay.Receive(func(user, mid string) { s.ackLocal(user, mid) })
	}
	s.wg.Add(1)
	go s.janitor()
	return s, nil
}

// Close stops the janitor and drops pending acks. Idempotent.
func (s *Service) Close() error {
	s.once.Do(func() {
		close(s.stop)
		s.wg.Wait()
		s.ackMu.Lock()
		for id, a := range s.acks {
			a.timer.Stop()
			delete(s.acks, id)
		}
		s.ackMu.Unlock()
	})
	return nil
}

func (s *Service) janitor() {
	defer s.wg.Done()
	// In a cluster the tick also tells the other nodes about pollers whose
	// next poll lapsed, so it runs more often.
	every := time.Minute
	if s.shared != nil {
		every = 5 * time.Second
	}
	t := time.NewTicker(every)
	defer t.Stop()
	n := 0
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			now := s.o.Now()
			if s.shared != nil {
				for _, u := range s.presence.lapsed(now) {
					s.shared.SetLocal(u, false)
				}
			}
			if n++; n%int(time.Minute/every) == 0 {
				s.watch.Sweep(now)
				s.presence.sweep(now, 24*time.Hour)
			}
		}
	}
}

// Hub is the hub events go through.
func (s *Service) Hub() *hub.Hub { return s.hub }

// Options returns the effective options (defaults applied).
func (s *Service) Options() Options { return s.o }

// FieldError is invalid input, naming the field.
type FieldError struct {
	Field, Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, format string, args ...any) *FieldError {
	return &FieldError{Field: field, Message: fmt.Sprintf(format, args...)}
}

// ValidID checks a user id or tag: non-empty, at most 128 bytes, valid
// UTF-8 without control characters.
func ValidID(s string) string {
	switch {
	case s == "":
		return "must not be empty"
	case len(s) > 128:
		return "must be at most 128 bytes"
	case !utf8.ValidString(s):
		return "must be valid UTF-8"
	case strings.IndexFunc(s, unicode.IsControl) >= 0:
		return "must not contain control characters"
	}
	return ""
}

func checkIDs(field string, ids []string) error {
	for i, id := range ids {
		if msg := ValidID(id); msg != "" {
			return fieldErr(fmt.Sprintf("%s[%d]", field, i), "%s", msg)
		}
	}
	return nil
}

// Event is one event to publish.
type Event struct {
	Users     []string
	Tags      []string
	Shared    bool
	SkipUsers []string
	ModuleID  string
	Command   string
	Params    json.RawMessage // any JSON value; nil = {}
	Extra     json.RawMessage // a JSON object or nil
	// Expiry is how long the event is kept for resume and polling; nil =
	// the default, 0 = live only.
	Expiry *time.Duration
	// Push, when set, is sent as a mobile push to recipients who are not
	// online (Users/SkipUsers of it are ignored: the event's recipients
	// are used). Its WhenOnline (skip by default) says what online users
	// get.
	Push *push.Request
	// AckTimeout: online users who do not ack the event within it get the
	// push too.
	AckTimeout time.Duration
}

// Validate checks e; field names are the API's.
func (s *Service) Validate(e *Event) error {
	if len(e.Users) == 0 && len(e.Tags) == 0 && !e.Shared {
		return fieldErr("users", "at least one of users, tags or shared is required")
	}
	for _, c := range []struct {
		f   string
		ids []string
	}{{"users", e.Users}, {"tags", e.Tags}, {"skip_users", e.SkipUsers}} {
		if err := checkIDs(c.f, c.ids); err != nil {
			return err
		}
	}
	if msg := ValidID(e.ModuleID); msg != "" {
		return fieldErr("module_id", "%s", msg)
	}
	if msg := ValidID(e.Command); msg != "" {
		return fieldErr("command", "%s", msg)
	}
	if len(e.Params) > 0 && !json.Valid(e.Params) {
		return fieldErr("params", "must be JSON")
	}
	if len(e.Extra) > 0 {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(e.Extra, &m); err != nil {
			return fieldErr("extra", "must be a JSON object")
		}
	}
	if e.Expiry != nil && (*e.Expiry < 0 || *e.Expiry > s.o.MaxEventExpiry) {
		return fieldErr("expiry", "must be from 0 to %d seconds", int64(s.o.MaxEventExpiry/time.Second))
	}
	if e.AckTimeout < 0 || e.AckTimeout > s.o.MaxAckTimeout {
		return fieldErr("ack_timeout", "must be from 0 to %s", s.o.MaxAckTimeout)
	}
	if e.AckTimeout > 0 && e.Push == nil {
		return fieldErr("ack_timeout", "needs a push block: it says when the push goes out")
	}
	return nil
}

// PublishResult is what Publish did with one event.
type PublishResult struct {
	ID       string   `json:"id"`
	Online   []string `json:"online"`
	Pushed   []string `json:"pushed"`
	NoDevice []string `json:"no_device"`
}

// ErrNoPush is returned when an event has a push block and there is no
// push service.
var ErrNoPush = errors.New("live: push is not available")
