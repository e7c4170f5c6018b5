package main

import (
	"context"
	"log/slog"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/web/api"
)

// SIGHUP reloads the parts of the configuration that can change under a
// running gateway without dropping anything: the log level, the API keys
// and the push providers (credentials, apps, endpoints). Everything else is
// fixed at start and is reported as "needs restart".
//
// A reload is all or nothing: the new file is loaded and validated, the new
// providers are built (credentials read), and only then is anything
// applied. An invalid file or an unreadable key changes nothing.

// swapProvider is a providers.Provider whose implementation a reload can
// replace while the dispatcher keeps using it. push.Service keeps one
// provider per platform for its whole life (its circuit breaker and
// counters hang on it), so the swap happens one level down, here, and the
// push package needs no reload API of its own.
type swapProvider struct {
	platform string
	cur      atomic.Pointer[provRef]
	retiring sync.WaitGroup // closers of replaced providers
}

// provRef counts the sends in flight on one provider, so that a replaced
// provider is closed only after the last of them returned.
type provRef struct {
	p providers.Provider

	mu      sync.Mutex
	n       int
	retired bool
	idle    chan struct{} // closed once retired and n == 0
}

func newProvRef(p providers.Provider) *provRef {
	return &provRef{p: p, idle: make(chan struct{})}
}

// acquire registers a send; false once the provider was replaced.
func (r *provRef) acquire() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.retired {
		return false
	}
	r.n++
	return true
}

func (r *provRef) release() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n--
	if r.n == 0 && r.retired {
		close(r.idle)
	}
}

// retire refuses new sends and returns a channel closed when the last send
// in flight has returned.
func (r *provRef) retire() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.retired {
		r.retired = true
		if r.n == 0 {
			close(r.idle)
		}
	}
	return r.idle
}

// swappable wraps each provider so that a reload can replace it.
func swappable(ps []providers.Provider) []providers.Provider {
	out := make([]providers.Provider, len(ps))
	for i, p := range ps {
		s := &swapProvider{platform: p.Platform()}
		s.cur.Store(newProvRef(p))
		out[i] = s
	}
	return out
}

// Platform returns the platform, fixed for the wrapper's life.
func (s *swapProvider) Platform() string { return s.platform }

// HasApp asks the current provider.
func (s *swapProvider) HasApp(appID string) bool { return s.cur.Load().p.HasApp(appID) }

// Send sends through the current provider. A reload between Load and
// acquire retires the loaded one after storing its successor, so the loop
// ends on the next iteration.
func (s *swapProvider) Send(ctx context.Context, batch []providers.Message) []providers.Result {
	for {
		r := s.cur.Load()
		if r.acquire() {
			defer r.release()
			return r.p.Send(ctx, batch)
		}
	}
}

// swap makes p the provider for new sends and closes the old one once its
// sends in flight have returned (bounded by push.send_timeout).
func (s *swapProvider) swap(p providers.Provider) {
	old := s.cur.Swap(newProvRef(p))
	s.retiring.Go(func() {
		<-old.retire()
		_ = old.p.Close()
	})
}

// Close closes the current provider and waits for replaced ones to close.
// The app calls it after the dispatcher stopped. Idempotent, as the
// providers' own Close is.
func (s *swapProvider) Close() error {
	err := s.cur.Load().p.Close()
	s.retiring.Wait()
	return err
}

// reloader applies SIGHUP. It is used from serve's signal loop only, so it
// needs no lock of its own.
type reloader struct {
	path    string
	running Config // in effect: the start config plus what reloads applied
	level   *slog.LevelVar
	keys    *api.Keys
	provs   map[string]*swapProvider // by platform
	log     *slog.Logger
}

func newReloader(path string, cfg Config, level *slog.LevelVar, a *app, log *slog.Logger) *reloader {
	r := &reloader{path: path, running: cfg, level: level, keys: a.keys, provs: map[string]*swapProvider{}, log: log}
	for _, p := range a.provs {
		if sp, ok := p.(*swapProvider); ok {
			r.provs[sp.platform] = sp
		}
	}
	return r
}

// providerSection is a config section a reload applies by rebuilding the
// provider of its platform.
type providerSection struct{ section, platform string }

func providerSections() []providerSection {
	return []providerSection{
		{"apns", providers.PlatformAPNs}, {"fcm", providers.PlatformFCM}, {"hms", providers.PlatformHMS},
	}
}

// reload re-reads the configuration and applies what it safely can. It
// reports (and logs) what it did; an error means nothing changed.
func (r *reloader) reload(ctx context.Context) (applied, needsRestart []string, err error) {
	defer func() {
		if err != nil {
			r.log.Error("config reload failed: nothing changed", "err", err)
		}
	}()
	next, err := loadConfig(r.path, environ())
	if err != nil {
		return nil, nil, err
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(next.Log.Level)); err != nil {
		return nil, nil, &ConfigError{Key: "log.level", Message: err.Error()}
	}
	keys := next.API.Keys
	if len(keys) == 0 {
		// Same rule as at start: no configured key means the generated one,
		// in the data directory the gateway runs on (not a new one).
		k, _, err := generatedSecret(filepath.Join(r.running.Server.DataDir, "api_key"))
		if err != nil {
			return nil, nil, err
		}
		keys = []string{k}
	}
	built, err := buildProviders(ctx, next, r.log)
	if err != nil {
		return nil, nil, err
	}

	// Nothing below fails: apply.
	fixed := map[string]bool{} // sections whose change needs a restart
	swapped := map[string]bool{}
	for _, p := range built {
		if sp := r.provs[p.Platform()]; sp != nil {
			sp.swap(p)
			swapped[p.Platform()] = true
			continue
		}
		_ = p.Close() // a platform the dispatcher was not started with
	}
	for _, ps := range providerSections() {
		if (r.provs[ps.platform] != nil) != swapped[ps.platform] {
			fixed[ps.section] = true // platform added or removed
		}
	}
	r.level.Set(lvl)
	r.keys.Set(keys)

	running := r.running
	running.Log.Level = next.Log.Level
	running.API.Keys, running.API.KeyFiles = next.API.Keys, next.API.KeyFiles
	applied = []string{"log.level=" + next.Log.Level, "api.keys"}
	for _, ps := range providerSections() {
		if fixed[ps.section] {
			continue
		}
		sec := reflect.ValueOf(&running).Elem().FieldByName(sectionField(ps.section))
		sec.Set(reflect.ValueOf(next).FieldByName(sectionField(ps.section)))
		if swapped[ps.platform] {
			applied = append(applied, ps.section)
		}
	}
	needsRestart = changedKeys(running, next)
	r.running = running

	r.log.Info("config reloaded", "applied", strings.Join(applied, ","),
		"api_keys", len(keys), "needs_restart", strings.Join(needsRestart, ","))
	if len(needsRestart) > 0 {
		r.log.Warn("needs restart: " + strings.Join(needsRestart, ", "))
	}
	return applied, needsRestart, nil
}

// sectionField maps a TOML section name to its Config field name.
func sectionField(section string) string {
	t := reflect.TypeFor[Config]()
	for i := range t.NumField() {
		if t.Field(i).Tag.Get("toml") == section {
			return t.Field(i).Name
		}
	}
	panic("no config section " + section) // a programming error: the table above is wrong
}

// changedKeys lists the "section.key" names whose values differ.
func changedKeys(a, b Config) []string {
	var out []string
	av, bv := reflect.ValueOf(a), reflect.ValueOf(b)
	for i := range av.NumField() {
		sec := av.Type().Field(i).Tag.Get("toml")
		as, bs := av.Field(i), bv.Field(i)
		for j := range as.NumField() {
			if !reflect.DeepEqual(as.Field(j).Interface(), bs.Field(j).Interface()) {
				out = append(out, sec+"."+as.Type().Field(j).Tag.Get("toml"))
			}
		}
	}
	sort.Strings(out)
	return out
}
