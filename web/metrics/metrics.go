// Package metrics exports pushpull's Prometheus metrics on the publisher
// listener (/metrics). Gauges that mirror a component's state (queue depth,
// hub connections, history, database size) are read from that component at
// scrape time, so components need no metrics code for them; request
// metrics come from Echo middleware.
package metrics

import (
	"os"
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

// Metrics is the registry and the metrics pushpull updates directly.
type Metrics struct {
	// Registry holds every pushpull metric plus the Go and process ones.
	Registry *prometheus.Registry

	requests *prometheus.HistogramVec
}

// New returns a registry with build info, Go runtime and process metrics.
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
		Help:    "HTTP requests by listener, route and status, with their latency.",
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
func (m *Metrics) WatchQueue(q *queue.Queue) {
	m.Registry.MustRegister(&queueCollector{q: q})
}

// WatchHub exports the hub's connections, channels and history.
func (m *Metrics) WatchHub(h *hub.Hub) {
	m.Registry.MustRegister(&hubCollector{h: h})
}

// WatchPush exports the dispatcher's per-provider answer counters.
func (m *Metrics) WatchPush(stats func() []push.ProviderStats) {
	m.Registry.MustRegister(&pushCollector{stats: stats})
}

// WatchDB exports the database file size and bbolt's commit statistics.
func (m *Metrics) WatchDB(db *bolt.DB) {
	m.Registry.MustRegister(&dbCollector{db: db})
}

var (
	queueDepth = prometheus.NewDesc(ns+"_queue_jobs", "Push jobs in the queue by state (due, deferred, in_flight, dead).", []string{"state"}, nil)
	queueAge   = prometheus.NewDesc(ns+"_queue_oldest_due_age_seconds", "How long the oldest due job has waited.", nil, nil)
	queueTotal = prometheus.NewDesc(ns+"_queue_jobs_total", "Jobs settled since start by outcome (delivered, retried, expired, dead).", []string{"outcome"}, nil)
	queueUp    = prometheus.NewDesc(ns+"_queue_stats_errors", "1 when reading the queue statistics failed at this scrape.", nil, nil)

	hubConns    = prometheus.NewDesc(ns+"_connections", "Live connections held by the hub.", nil, nil)
	hubChannels = prometheus.NewDesc(ns+"_channels", "Channels with subscribers or history.", nil, nil)
	histEvents  = prometheus.NewDesc(ns+"_history_events", "Events kept in history for resume and polling.", nil, nil)
	histBytes   = prometheus.NewDesc(ns+"_history_bytes", "Estimated memory used by history.", nil, nil)
	hubDropped  = prometheus.NewDesc(ns+"_events_dropped_total", "Events dropped by reason (slow_consumer: connection cut; expired, evicted: left history).", []string{"reason"}, nil)

	pushResults = prometheus.NewDesc(ns+"_pushes_total", "Provider answers by platform and result (delivered, retry, token_invalid, rejected, paused).", []string{"platform", "result"}, nil)
	pushPaused  = prometheus.NewDesc(ns+"_provider_paused", "1 while the circuit breaker holds a provider back.", []string{"platform"}, nil)

	dbSize      = prometheus.NewDesc(ns+"_db_file_bytes", "Size of the bbolt database file.", nil, nil)
	dbCommits   = prometheus.NewDesc(ns+"_db_commits_total", "bbolt write transactions committed.", nil, nil)
	dbWriteTime = prometheus.NewDesc(ns+"_db_write_seconds_total", "Time bbolt spent writing pages to disk (commit latency, summed).", nil, nil)
)

type queueCollector struct{ q *queue.Queue }

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- queueDepth
	ch <- queueAge
	ch <- queueTotal
	ch <- queueUp
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.q.Stats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueUp, prometheus.GaugeValue, 0)
	for state, v := range map[string]int{"due": st.Due, "deferred": st.Deferred, "in_flight": st.InFlight, "dead": st.Dead} {
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(v), state)
	}
	ch <- prometheus.MustNewConstMetric(queueAge, prometheus.GaugeValue, st.OldestDueAge.Seconds())
	for outcome, v := range map[string]uint64{"delivered": st.Delivered, "retried": st.Retried, "expired": st.Expired, "dead": st.DeadTotal} {
		ch <- prometheus.MustNewConstMetric(queueTotal, prometheus.CounterValue, float64(v), outcome)
	}
}

type hubCollector struct{ h *hub.Hub }

func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hubConns, hubChannels, histEvents, histBytes, hubDropped} {
		ch <- d
	}
}

func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	ch <- prometheus.MustNewConstMetric(hubConns, prometheus.GaugeValue, float64(st.Conns))
	ch <- prometheus.MustNewConstMetric(hubChannels, prometheus.GaugeValue, float64(st.Channels))
	ch <- prometheus.MustNewConstMetric(histEvents, prometheus.GaugeValue, float64(st.HistoryEvents))
	ch <- prometheus.MustNewConstMetric(histBytes, prometheus.GaugeValue, float64(st.HistoryBytes))
	ch <- prometheus.MustNewConstMetric(hubDropped, prometheus.CounterValue, float64(st.SlowClosed), "slow_consumer")
	ch <- prometheus.MustNewConstMetric(hubDropped, prometheus.CounterValue, float64(st.Expired), "expired")
	ch <- prometheus.MustNewConstMetric(hubDropped, prometheus.CounterValue, float64(st.Evicted), "evicted")
}

type pushCollector struct{ stats func() []push.ProviderStats }

func (c *pushCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- pushResults
	ch <- pushPaused
}

func (c *pushCollector) Collect(ch chan<- prometheus.Metric) {
	for _, p := range c.stats() {
		for res, v := range map[string]uint64{"delivered": p.Delivered, "retry": p.Retried, "token_invalid": p.TokenInvalid, "rejected": p.Rejected, "paused": p.Paused} {
			ch <- prometheus.MustNewConstMetric(pushResults, prometheus.CounterValue, float64(v), p.Platform, res)
		}
		paused := 0.0
		if p.PausedUntil != nil && time.Now().Before(*p.PausedUntil) {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(pushPaused, prometheus.GaugeValue, paused, p.Platform)
	}
}

type dbCollector struct{ db *bolt.DB }

func (c *dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dbSize
	ch <- dbCommits
	ch <- dbWriteTime
}

func (c *dbCollector) Collect(ch chan<- prometheus.Metric) {
	if fi, err := os.Stat(c.db.Path()); err == nil {
		ch <- prometheus.MustNewConstMetric(dbSize, prometheus.GaugeValue, float64(fi.Size()))
	}
	st := c.db.Stats()
	ch <- prometheus.MustNewConstMetric(dbCommits, prometheus.CounterValue, float64(st.TxN))
	ch <- prometheus.MustNewConstMetric(dbWriteTime, prometheus.CounterValue, st.TxStats.GetWriteTime().Seconds())
}
