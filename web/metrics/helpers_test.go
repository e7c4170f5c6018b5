package metrics

import (
	"context"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/devices"
	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/providers"
	"github.com/pushpull/pushpull/providers/apns"
	"github.com/pushpull/pushpull/providers/fake"
	"github.com/pushpull/pushpull/queue"
)

const testApp = "Bitrix24"

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// gateway is every component the metrics watch, real, on a bbolt file in
// a temp dir, with the real apns2 client against the protocol-true fake.
type gateway struct {
	db    *bolt.DB
	q     *queue.Queue
	reg   *devices.Registry
	hub   *hub.Hub
	apns  *fake.APNs
	push  *push.Service
	probe *DBProbe
	m     *Metrics
}

func newGateway(t *testing.T, hubOpts hub.Options) *gateway {
	t.Helper()
	g := &gateway{}
	var err error
	if g.db, err = bolt.Open(filepath.Join(t.TempDir(), "m.db"), 0o600, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.db.Close() })
	if g.q, err = queue.Open(g.db, queue.Options{Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.q.Close() })
	if g.reg, err = devices.Open(g.db, devices.Options{PurgeInterval: -1, Logger: quiet()}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.reg.Close() })
	hubOpts.Logger = quiet()
	if g.hub, err = hub.New(hubOpts); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.hub.Close)

	if g.apns, err = fake.NewAPNs(fake.APNsOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.apns.Close)
	keyPEM, pub, err := fake.NewAPNsKey()
	if err != nil {
		t.Fatal(err)
	}
	g.apns.AddKey("KEY1234567", "TEAM123456", pub)
	pool := x509.NewCertPool()
	pool.AddCert(g.apns.Certificate())
	ap, err := apns.New(apns.Options{
		Apps:          []apns.App{{ID: testApp, Topic: "com.example.b24", Key: keyPEM, KeyID: "KEY1234567", TeamID: "TEAM123456"}},
		ProductionURL: g.apns.URL(), SandboxURL: g.apns.URL(), RootCAs: pool, Timeout: 5 * time.Second, Logger: quiet(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ap.Close() })
	if g.push, err = push.New(g.q, g.reg, []providers.Provider{ap}, push.Options{Logger: quiet(), MaxIdle: time.Hour}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := g.push.Stop(ctx); err != nil {
			t.Errorf("push Stop: %v", err)
		}
	})
	if g.probe, err = NewDBProbe(g.db, ProbeOptions{MinFreeBytes: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(g.probe.Close)

	g.m = New("v-test")
	g.m.WatchQueue(g.q)
	g.m.WatchHub(g.hub)
	g.m.WatchDB(g.db)
	g.m.WatchPush(g.push.ProviderStats)
	g.m.WatchReady(g.probe.Check)
	g.m.Registry.MustRegister(g.probe.Collector())
	return g
}

// testTransport accepts every frame; block, when set, holds writes.
type testTransport struct {
	mu     sync.Mutex
	frames int
}

func (t *testTransport) WriteFrame(ctx context.Context, _ []byte) error {
	t.mu.Lock()
	t.frames++
	t.mu.Unlock()
	return nil
}
func (t *testTransport) Close(int, string) error { return nil }

// series is one scraped sample: family name plus labels, and its value
// (a histogram's sample count).
type series map[string]float64

// scrape gathers the registry into "name{k="v",...}" -> value, labels
// sorted, and the set of family names (with histogram suffixes).
func scrape(t *testing.T, m *Metrics) (series, map[string]bool) {
	t.Helper()
	fams, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := series{}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
		if f.GetType() == dto.MetricType_HISTOGRAM {
			for _, s := range []string{"_bucket", "_count", "_sum"} {
				names[f.GetName()+s] = true
			}
		}
		for _, mt := range f.GetMetric() {
			var ls []string
			for _, l := range mt.GetLabel() {
				ls = append(ls, fmt.Sprintf("%s=%q", l.GetName(), l.GetValue()))
			}
			sort.Strings(ls)
			key := f.GetName()
			if len(ls) > 0 {
				key += "{" + strings.Join(ls, ",") + "}"
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[key] = mt.GetCounter().GetValue()
			case dto.MetricType_GAUGE:
				out[key] = mt.GetGauge().GetValue()
			case dto.MetricType_HISTOGRAM:
				out[key] = float64(mt.GetHistogram().GetSampleCount())
			default:
				out[key] = mt.GetUntyped().GetValue()
			}
		}
	}
	return out, names
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond) // polling a condition with a deadline
	}
}
