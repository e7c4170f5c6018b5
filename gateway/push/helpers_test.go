package push

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/providers/fcm"
	"github.com/pushpull/pushpull/queue"
)

const (
	apnsApp   = "Bitrix24"
	apnsTopic = "com.example.b24"
	fcmApp    = "b24-android"
	fcmProj   = "b24-project"
	keyID     = "KEY1234567"
	teamID    = "TEAM123456"
)

// t0 is where hand-moved clocks start: the real time at process start, so
// that expiry dates the real providers compute against the wall clock
// stay in the future.
var t0 = time.Now().UTC().Truncate(time.Second)

// clock is an injectable clock that tests move by hand.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
}

// envConfig selects what newEnv builds.
type envConfig struct {
	fakeClock    bool // a hand-moved clock for queue, registry and service
	noFCM        bool // no FCM provider at all
	wrongAPNsKey bool // the APNs provider signs with a key the fake does not know
	countOnly    bool // fakes count but do not record (benchmarks)
	feedback     bool // start a feedback webhook receiver
	push         func(*Options)
	queue        func(*queue.Options)
}

// env is a push service over real parts: a bbolt file in a temp dir, the
// real queue and registry, the real apns2 and firebase clients against the
// protocol-true fakes (production and sandbox APNs, FCM with OAuth through a
// service-account file).
type env struct {
	t           testing.TB
	clock       *clock
	dbPath      string
	db          *bbolt.DB
	q           *queue.Queue
	reg         *devices.Registry
	prod, sandb *fake.APNs
	fcm         *fake.FCM
	provs       []providers.Provider
	svc         *Service
	fb          *feedbackSink
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, cfg envConfig) *env {
	t.Helper()
	e := &env{t: t, clock: &clock{now: t0}}
	now := time.Now
	if cfg.fakeClock {
		now = e.clock.Now
	}
	e.dbPath = filepath.Join(t.TempDir(), "push.db")
	db, err := bbolt.Open(e.dbPath, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	e.db = db
	t.Cleanup(func() { db.Close() })
	qo := queue.Options{Now: now, Logger: quiet(), Random: func() float64 { return 0.5 }}
	if cfg.queue != nil {
		cfg.queue(&qo)
	}
	if e.q, err = queue.Open(db, qo); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.q.Close() })
	if e.reg, err = devices.Open(db, devices.Options{Now: now, PurgeInterval: -1, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.reg.Close() })

	e.prod, e.sandb = newFakeAPNs(t, cfg.countOnly), newFakeAPNs(t, cfg.countOnly)
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	e.prod.AddKey(keyID, teamID, pub)
	e.sandb.AddKey(keyID, teamID, pub)
	if cfg.wrongAPNsKey {
		if keyPEM, _, err = fake.NewAPNsKey(); err != nil {
			t.Fatal(err)
		}
	}
	pool := x509.NewCertPool()
	pool.AddCert(e.prod.Certificate())
	pool.AddCert(e.sandb.Certificate())
	ap, err := apns.New(apns.Options{
		Apps:          []apns.App{{ID: apnsApp, Topic: apnsTopic, Key: keyPEM, KeyID: keyID, TeamID: teamID}},
		ProductionURL: e.prod.URL(), SandboxURL: e.sandb.URL(), RootCAs: pool,
		Timeout: 5 * time.Second, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	e.provs = append(e.provs, ap)

	if !cfg.noFCM {
		if e.fcm, err = fake.NewFCM(fake.FCMOptions{CountOnly: cfg.countOnly}); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(e.fcm.Close)
		sa, err := e.fcm.ServiceAccountJSON(fcmProj)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(t.TempDir(), "sa.json")
		if err := os.WriteFile(file, sa, 0o600); err != nil {
			t.Fatal(err)
		}
		fp, err := fcm.New(context.Background(), fcm.Options{
			Apps:     []fcm.App{{ID: fcmApp, CredentialsFile: file}},
			Endpoint: e.fcm.URL() + "/v1", Timeout: 5 * time.Second, Logger: quiet(),
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fp.Close() })
		e.provs = append(e.provs, fp)
	}

	po := Options{Now: now, Logger: quiet(), MaxIdle: time.Hour}
	if os.Getenv("PUSH_TEST_LOG") != "" {
		po.Logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	if cfg.feedback {
		e.fb = newFeedbackSink(t)
		po.FeedbackURL = e.fb.srv.URL
		po.FeedbackSecret = []byte("feedback-secret")
		po.FeedbackBackoff = time.Millisecond
	}
	if cfg.push != nil {
		cfg.push(&po)
	}
	if e.svc, err = New(e.q, e.reg, e.provs, po); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := e.svc.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return e
}

func newFakeAPNs(t testing.TB, countOnly bool) *fake.APNs {
	t.Helper()
	f, err := fake.NewAPNs(fake.APNsOptions{CountOnly: countOnly})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(f.Close)
	return f
}

// apnsToken returns a valid, distinct 64-hex-digit APNs token.
func apnsToken(i int) string { return fmt.Sprintf("%064x", 0xa0000+i) }

// fcmToken returns a distinct FCM registration token.
func fcmToken(i int) string { return fmt.Sprintf("fcm-token-%04d:APA91b", i) }

func (e *env) register(d devices.Device) devices.Device {
	e.t.Helper()
	if d.AppID == "" {
		d.AppID = map[string]string{devices.PlatformAPNs: apnsApp, devices.PlatformFCM: fcmApp}[d.Platform]
	}
	r, err := e.reg.Register(context.Background(), d)
	if err != nil {
		e.t.Fatalf("register %+v: %v", d, err)
	}
	return r.Device
}

func (e *env) push(reqs ...Request) []Result {
	e.t.Helper()
	res, err := e.svc.Push(context.Background(), reqs)
	if err != nil {
		e.t.Fatalf("Push: %v", err)
	}
	return res
}

// dispatch runs one lease-send-settle pass and returns how many jobs it
// leased.
func (e *env) dispatch() int {
	e.t.Helper()
	n, err := e.svc.dispatchOnce(context.Background())
	if err != nil {
		e.t.Fatalf("dispatchOnce: %v", err)
	}
	return n
}

func (e *env) status(id string) Status {
	e.t.Helper()
	st, err := e.svc.Status(context.Background(), id)
	if err != nil {
		e.t.Fatalf("Status(%s): %v", id, err)
	}
	return st
}

func (e *env) start() {
	e.t.Helper()
	if err := e.svc.Start(); err != nil {
		e.t.Fatal(err)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline, not waiting a guessed time
	}
}

func waitCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// apnsFor returns the requests a fake APNs received for token.
func apnsFor(f *fake.APNs, token string) []fake.APNsRequest {
	var out []fake.APNsRequest
	for _, r := range f.Received() {
		if r.Token == token {
			out = append(out, r)
		}
	}
	return out
}

func fcmFor(f *fake.FCM, token string) []fake.FCMRequest {
	var out []fake.FCMRequest
	for _, r := range f.Received() {
		if r.Token == token {
			out = append(out, r)
		}
	}
	return out
}

// feedbackSink is a webhook receiver that records bodies and signatures,
// failing the first failFirst requests with 503.
type feedbackSink struct {
	srv       *httptest.Server
	mu        sync.Mutex
	failFirst int
	calls     int
	bodies    [][]byte
	sigs      []string
}

func newFeedbackSink(t testing.TB) *feedbackSink {
	s := &feedbackSink{}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.calls++
		if s.calls <= s.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		s.bodies = append(s.bodies, body)
		s.sigs = append(s.sigs, r.Header.Get(SignatureHeader))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *feedbackSink) reports(t testing.TB) ([]Report, []string, [][]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Report, len(s.bodies))
	for i, b := range s.bodies {
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatalf("feedback body %q: %v", b, err)
		}
	}
	return out, append([]string(nil), s.sigs...), append([][]byte(nil), s.bodies...)
}

func intp(i int) *int { return &i }
