package metrics

import (
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	bolt "go.etcd.io/bbolt"

	"github.com/pushpull/pushpull/gateway/hub"
	"github.com/pushpull/pushpull/gateway/push"
	"github.com/pushpull/pushpull/queue"
)

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc(ns+"_"+name, help, labels, nil)
}

// The descriptors are immutable once built; they are package-level like
// the constants they are.
var (
	queueDepth = desc("queue_jobs", "Push jobs in the queue by state (due, deferred, in_flight, dead).", "state")
	queueAge   = desc("queue_oldest_due_age_seconds", "How long the oldest due job has waited.")
	queueTotal = desc("queue_jobs_total", "Jobs settled since start by outcome (delivered, retried, expired, dead).", "outcome")
	queueErr   = desc("queue_stats_errors", "1 when reading the queue statistics failed at this scrape.")

	hubConns     = desc("connections", "Live subscribers by transport (websocket, sse, longpoll, shortpoll) and protocol (native, bitrix_v3, bitrix_v4, bitrix_v5): open connections and polls in progress.", "transport", "protocol")
	hubOpened    = desc("sessions_opened_total", "Connections opened and polls served since start, by transport and protocol.", "transport", "protocol")
	hubChannels  = desc("channels", "Channels with subscribers, pollers or history.")
	histEvents   = desc("history_events", "Events kept in history for resume and polling (an event on n channels counts n).")
	histBytes    = desc("history_bytes", "Estimated memory used by history.")
	hubPublished = desc("events_published_total", "Events published to the hub.")
	hubDelivered = desc("events_delivered_total", "Events handed to subscribers, by path: live (queued on a connection as published), replay (queued on resume), poll (returned by a long or short poll).", "via")
	hubDropped   = desc("events_dropped_total", "Events dropped, by reason: slow_consumer (discarded with the queue of a connection cut as a slow consumer), expired and evicted (left history at expiry or by its bounds).", "reason")
	hubSlow      = desc("slow_consumers_total", "Connections closed because their queue overflowed (close code 4008).")

	pushResults  = desc("pushes_total", "Pushes by platform, app, result (delivered, retry, token_invalid, rejected, paused) and reason (the provider's, status_<code>, none, other, no_app, undecodable, circuit_open).", "platform", "app", "result", "reason")
	pushLatency  = desc("provider_send_duration_seconds", "Latency of provider Send calls (one per chunk of pushes sent in parallel), by platform.", "platform")
	pushPaused   = desc("provider_paused", "1 while the circuit breaker holds a provider back.", "platform")
	pushLastOK   = desc("provider_last_success_timestamp_seconds", "Unix time of the provider's last successful answer (delivered or token invalid); absent until one.", "platform")
	pushLastFail = desc("provider_last_failure_timestamp_seconds", "Unix time of the provider's last failed answer (retry or rejected); absent until one.", "platform")
	tokensGone   = desc("tokens_removed_total", "Device tokens the provider declared invalid (device removed from the registry, job dropped), by platform and reason.", "platform", "reason")

	dbSize      = desc("db_file_bytes", "Size of the bbolt database file.")
	dbCommits   = desc("db_commits_total", "bbolt write transactions committed.")
	dbWriteTime = desc("db_write_seconds_total", "Time bbolt spent writing and syncing committed pages (commit latency, summed; divide by db_commits_total for the mean).")
)

type queueCollector struct {
	q interface{ Stats() (queue.Stats, error) }
}

func (c *queueCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{queueDepth, queueAge, queueTotal, queueErr} {
		ch <- d
	}
}

func (c *queueCollector) Collect(ch chan<- prometheus.Metric) {
	st, err := c.q.Stats()
	if err != nil {
		ch <- prometheus.MustNewConstMetric(queueErr, prometheus.GaugeValue, 1)
		return
	}
	ch <- prometheus.MustNewConstMetric(queueErr, prometheus.GaugeValue, 0)
	for state, v := range map[string]int{"due": st.Due, "deferred": st.Deferred, "in_flight": st.InFlight, "dead": st.Dead} {
		ch <- prometheus.MustNewConstMetric(queueDepth, prometheus.GaugeValue, float64(v), state)
	}
	ch <- prometheus.MustNewConstMetric(queueAge, prometheus.GaugeValue, st.OldestDueAge.Seconds())
	for outcome, v := range map[string]uint64{"delivered": st.Delivered, "retried": st.Retried, "expired": st.Expired, "dead": st.DeadTotal} {
		ch <- prometheus.MustNewConstMetric(queueTotal, prometheus.CounterValue, float64(v), outcome)
	}
}

type hubCollector struct{ h *hub.Hub }

// defaultLabels are always exported, even at zero, so dashboards and
// alerts see the series before the first connection of each kind.
var defaultLabels = []hub.Label{
	{Transport: hub.TransportWebSocket, Protocol: hub.ProtocolNative},
	{Transport: hub.TransportSSE, Protocol: hub.ProtocolNative},
	{Transport: hub.TransportLongPoll, Protocol: hub.ProtocolNative},
	{Transport: hub.TransportShortPoll, Protocol: hub.ProtocolNative},
}

func (c *hubCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hubConns, hubOpened, hubChannels, histEvents, histBytes, hubPublished, hubDelivered, hubDropped, hubSlow} {
		ch <- d
	}
}

func (c *hubCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.h.Stats()
	seen := make(map[hub.Label]bool)
	for _, s := range c.h.Subscribers() {
		seen[s.Label] = true
		ch <- prometheus.MustNewConstMetric(hubConns, prometheus.GaugeValue, float64(s.Open), s.Transport, s.Protocol)
		ch <- prometheus.MustNewConstMetric(hubOpened, prometheus.CounterValue, float64(s.Total), s.Transport, s.Protocol)
	}
	for _, l := range defaultLabels {
		if !seen[l] {
			ch <- prometheus.MustNewConstMetric(hubConns, prometheus.GaugeValue, 0, l.Transport, l.Protocol)
			ch <- prometheus.MustNewConstMetric(hubOpened, prometheus.CounterValue, 0, l.Transport, l.Protocol)
		}
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(hubChannels, float64(st.Channels))
	gauge(histEvents, float64(st.HistoryEvents))
	gauge(histBytes, float64(st.HistoryBytes))
	counter(hubPublished, st.Published)
	counter(hubDelivered, st.Delivered, "live")
	counter(hubDelivered, st.Replayed, "replay")
	counter(hubDelivered, st.Polled, "poll")
	counter(hubDropped, st.DroppedSlow, "slow_consumer")
	counter(hubDropped, st.Expired, "expired")
	counter(hubDropped, st.Evicted, "evicted")
	counter(hubSlow, st.SlowClosed)
}

type pushCollector struct {
	stats func() []push.ProviderStats
	now   func() time.Time
}

func (c *pushCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{pushResults, pushLatency, pushPaused, pushLastOK, pushLastFail, tokensGone} {
		ch <- d
	}
}

func (c *pushCollector) Collect(ch chan<- prometheus.Metric) {
	now := c.now()
	for _, p := range c.stats() {
		removed := make(map[string]uint64)
		for _, r := range p.Results {
			ch <- prometheus.MustNewConstMetric(pushResults, prometheus.CounterValue, float64(r.Count), p.Platform, r.AppID, r.Result, r.Reason)
			if r.Result == "token_invalid" {
				removed[r.Reason] += r.Count
			}
		}
		for reason, n := range removed {
			ch <- prometheus.MustNewConstMetric(tokensGone, prometheus.CounterValue, float64(n), p.Platform, reason)
		}
		if h := p.Latency; len(h.Counts) == len(h.Bounds)+1 {
			buckets := make(map[float64]uint64, len(h.Bounds))
			var cum uint64
			for i, b := range h.Bounds {
				cum += h.Counts[i]
				buckets[b] = cum
			}
			ch <- prometheus.MustNewConstHistogram(pushLatency, h.Count, h.Sum, buckets, p.Platform)
		}
		paused := 0.0
		if p.PausedUntil != nil && now.Before(*p.PausedUntil) {
			paused = 1
		}
		ch <- prometheus.MustNewConstMetric(pushPaused, prometheus.GaugeValue, paused, p.Platform)
		if p.LastSuccess != nil {
			ch <- prometheus.MustNewConstMetric(pushLastOK, prometheus.GaugeValue, unix(*p.LastSuccess), p.Platform)
		}
		if p.LastFailure != nil {
			ch <- prometheus.MustNewConstMetric(pushLastFail, prometheus.GaugeValue, unix(*p.LastFailure), p.Platform)
		}
	}
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

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
