package metrics

import (
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/queue"
)

const ns = "pushpull"

// Metrics is the registry and the metrics pushpull updates directly. Its
// methods are safe for concurrent use; each Watch method may be called
// once per component.
type Metrics struct {
	// Registry holds every pushpull metric plus the Go and process ones.
	Registry *prometheus.Registry

	requests *prometheus.HistogramVec
}

// New returns a registry with build info, Go runtime and process metrics,
// and the request histogram that Middleware fills.
func New(version string) *Metrics {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	bi := prometheus.NewGauge(prometheus.GaugeOpts{
		Namespace: ns, Name: "build_info", Help: "Always 1; the version label says which build runs.",
		ConstLabels: prometheus.Labels{"version": version},
	})
	bi.Set(1)
	r.MustRegister(bi)
	m := &Metrics{Registry: r}
	m.requests = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: ns, Name: "http_request_duration_seconds",
		Help:    "HTTP requests by listener, route, method and status, with their latency (WebSocket and long-poll requests last as long as the connection).",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 10, 60},
	}, []string{"listener", "route", "method", "status"})
	r.MustRegister(m.requests)
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() echo.HandlerFunc {
	h := promhttp.HandlerFor(m.Registry, promhttp.HandlerOpts{})
	return echo.WrapHandler(h)
}

// Middleware records every request of listener by route (the pattern, not
// the path, so ids do not explode the label set), method and status.
func (m *Metrics) Middleware(listener string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			start := time.Now()
			err := next(c)
			if err != nil {
				c.Error(err)
			}
			route := c.Path()
			if route == "" {
				route = "unmatched"
			}
			m.requests.WithLabelValues(listener, route, c.Request().Method, strconv.Itoa(c.Response().Status)).
				Observe(time.Since(start).Seconds())
			return nil
		}
	}
}

// WatchQueue exports the queue's depth and counters, read at scrape time.
func (m *Metrics) WatchQueue(q interface{ Stats() (queue.Stats, error) }) {
	m.Registry.MustRegister(&queueCollector{q: q})
}

// WatchHub exports the hub's connections by transport and protocol, its
// event counters, channels and history.
func (m *Metrics) WatchHub(h *hub.Hub) {
	m.Registry.MustRegister(&hubCollector{h: h})
}

// WatchPush exports the dispatcher's per-provider answers (by app, result
// and reason), send latency, breaker state, last success and failure, and
// the tokens removed as invalid.
func (m *Metrics) WatchPush(stats func() []push.ProviderStats) {
	m.Registry.MustRegister(&pushCollector{stats: stats, now: time.Now})
}

// WatchDB exports the database file size and bbolt's commit statistics.
func (m *Metrics) WatchDB(db *bolt.DB) {
	m.Registry.MustRegister(&dbCollector{db: db})
}

// WatchReady exports pushpull_ready: 1 when ready returns nil (the same
// check as /readyz), else 0.
func (m *Metrics) WatchReady(ready func() error) {
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Name: "ready",
		Help: "1 when /readyz answers 200 (serving, not draining, the database writable), else 0.",
	}, func() float64 {
		if ready() != nil {
			return 0
		}
		return 1
	}))
}

// ClusterStats is what WatchCluster reads from a cluster node.
type ClusterStats struct {
	// EventsApplied, EventsStale and EventsCorrupt count the entries of
	// the shared event stream this node applied, had applied already, and
	// could not decode.
	EventsApplied, EventsStale, EventsCorrupt uint64
	// Connected is true while the node's NATS connection is up.
	Connected bool
	// Nodes is how many nodes (this one included) have a fresh heartbeat.
	Nodes int
}

// WatchCluster exports the node's view of the cluster, read at scrape
// time: pushpull_cluster_events_applied_total (by result), _nats_connected
// and _nodes.
func (m *Metrics) WatchCluster(stats func() ClusterStats) {
	for _, r := range []struct {
		result string
		get    func(ClusterStats) uint64
	}{
		{"applied", func(s ClusterStats) uint64 { return s.EventsApplied }},
		{"stale", func(s ClusterStats) uint64 { return s.EventsStale }},
		{"corrupt", func(s ClusterStats) uint64 { return s.EventsCorrupt }},
	} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Namespace: ns, Subsystem: "cluster", Name: "events_applied_total",
			Help:        "Entries of the shared event stream by what this node did with them: applied to its hub, stale (applied before), corrupt (skipped).",
			ConstLabels: prometheus.Labels{"result": r.result},
		}, func() float64 { return float64(r.get(stats())) }))
	}
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: "cluster", Name: "nats_connected",
		Help: "1 while this node is connected to NATS, else 0.",
	}, func() float64 {
		if stats().Connected {
			return 1
		}
		return 0
	}))
	m.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Namespace: ns, Subsystem: "cluster", Name: "nodes",
		Help: "Nodes with a fresh heartbeat, this one included.",
	}, func() float64 { return float64(stats().Nodes) }))
}
