package admin

import (
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Snapshot is the answer of GET /admin/api/stats: current totals read from
// the Prometheus registry. Counters are totals since start; the browser
// turns successive snapshots into rates. A value is null when its metric
// is not registered (a component not wired, or a metric not yet added),
// so the dashboard can tell "none" from "zero".
type Snapshot struct {
	// Time is when the snapshot was taken, in Unix milliseconds.
	Time int64 `json:"time"`

	Connections *float64 `json:"connections"`
	// ConnectionsBy splits connections by their transport (or protocol)
	// label, when the registry has one.
	ConnectionsBy map[string]float64 `json:"connections_by,omitempty"`

	EventsPublished *float64 `json:"events_published"`
	EventsDelivered *float64 `json:"events_delivered"`
	EventsDropped   *float64 `json:"events_dropped"`
	// EventRequests counts POST .../api/v1/events calls; the dashboard
	// falls back to it when events are not counted by the hub.
	EventRequests *float64 `json:"event_requests"`

	// Pushes totals provider answers by result.
	Pushes          map[string]float64 `json:"pushes,omitempty"`
	PushesDelivered *float64           `json:"pushes_delivered"`
	// PushesFailed is every answer that is not a delivery and not a
	// circuit-breaker pause: retries, rejections, invalid tokens.
	PushesFailed *float64 `json:"pushes_failed"`

	// Queue is the depth by state (due, deferred, in_flight, dead).
	Queue          map[string]float64 `json:"queue,omitempty"`
	QueueOldestAge *float64           `json:"queue_oldest_due_age_seconds"`

	HTTPRequests *float64 `json:"http_requests"`
	HTTPErrors   *float64 `json:"http_errors"`   // status 5xx
	HTTPRejected *float64 `json:"http_rejected"` // status 4xx

	HistoryEvents *float64 `json:"history_events"`
	DBFileBytes   *float64 `json:"db_file_bytes"`
	Goroutines    *float64 `json:"goroutines"`
	HeapBytes     *float64 `json:"heap_bytes"`
}

// snapshot reads g. A Gather error still yields whatever families were
// gathered: one failing collector must not blank the dashboard.
func snapshot(g prometheus.Gatherer, now time.Time) Snapshot {
	s := Snapshot{Time: now.UnixMilli()}
	if g == nil {
		return s
	}
	fams, _ := g.Gather()
	byName := make(map[string]*dto.MetricFamily, len(fams))
	for _, f := range fams {
		byName[f.GetName()] = f
	}
	all := func(*dto.Metric) bool { return true }

	s.Connections = sum(byName["pushpull_connections"], all)
	s.ConnectionsBy = connectionsBy(fams)
	s.EventsPublished = sum(byName["pushpull_events_published_total"], all)
	s.EventsDelivered = sum(byName["pushpull_events_delivered_total"], all)
	s.EventsDropped = sum(byName["pushpull_events_dropped_total"], all)

	if f := byName["pushpull_pushes_total"]; f != nil {
		s.Pushes = groupBy(f, "result")
		s.PushesDelivered = sum(f, func(m *dto.Metric) bool { return label(m, "result") == "delivered" })
		s.PushesFailed = sum(f, func(m *dto.Metric) bool {
			r := label(m, "result")
			return r != "delivered" && r != "paused"
		})
	}
	if f := byName["pushpull_queue_jobs"]; f != nil {
		s.Queue = groupBy(f, "state")
	}
	s.QueueOldestAge = sum(byName["pushpull_queue_oldest_due_age_seconds"], all)

	if f := byName["pushpull_http_request_duration_seconds"]; f != nil {
		// The dashboard's own reads (polling, look-ups) are left out: it
		// would otherwise chart itself. What it sends (test events and
		// pushes, retries) is traffic like any other.
		api := func(m *dto.Metric) bool {
			return !strings.HasPrefix(label(m, "route"), Prefix+"/") || label(m, "method") != "GET"
		}
		s.HTTPRequests = sum(f, api)
		s.HTTPErrors = sum(f, func(m *dto.Metric) bool { return api(m) && strings.HasPrefix(label(m, "status"), "5") })
		s.HTTPRejected = sum(f, func(m *dto.Metric) bool { return api(m) && strings.HasPrefix(label(m, "status"), "4") })
		s.EventRequests = sum(f, func(m *dto.Metric) bool {
			return label(m, "method") == "POST" && strings.HasSuffix(label(m, "route"), "/api/v1/events") &&
				strings.HasPrefix(label(m, "status"), "2")
		})
	}
	s.HistoryEvents = sum(byName["pushpull_history_events"], all)
	s.DBFileBytes = sum(byName["pushpull_db_file_bytes"], all)
	s.Goroutines = sum(byName["go_goroutines"], all)
	s.HeapBytes = sum(byName["go_memstats_heap_alloc_bytes"], all)
	return s
}

// connectionsBy groups every pushpull_connections* family that carries a
// transport (or else protocol) label. Other helpers are adding such
// breakdowns; reading them by label rather than by name keeps this
// working whichever family they land in.
func connectionsBy(fams []*dto.MetricFamily) map[string]float64 {
	var out map[string]float64
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "pushpull_connections") {
			continue
		}
		for _, m := range f.GetMetric() {
			k := label(m, "transport")
			if k == "" {
				k = label(m, "protocol")
			}
			if k == "" {
				continue
			}
			if out == nil {
				out = make(map[string]float64)
			}
			out[k] += value(m)
		}
	}
	return out
}

// sum adds the values of f's series that keep says to; nil when f is
// absent.
func sum(f *dto.MetricFamily, keep func(*dto.Metric) bool) *float64 {
	if f == nil {
		return nil
	}
	var t float64
	for _, m := range f.GetMetric() {
		if keep(m) {
			t += value(m)
		}
	}
	return &t
}

func groupBy(f *dto.MetricFamily, name string) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range f.GetMetric() {
		out[label(m, name)] += value(m)
	}
	return out
}

// value is a series' number: histograms and summaries count observations.
func value(m *dto.Metric) float64 {
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Summary != nil:
		return float64(m.Summary.GetSampleCount())
	}
	return 0
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}
