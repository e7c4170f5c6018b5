package relay

import (
	"github.com/prometheus/client_golang/prometheus"

	gwrelay "github.com/pushpull/pushpull/gateway/relay"
)

var (
	descBatches = prometheus.NewDesc("pushpull_relay_batches_total", "Relay batches accepted, by layout (24.500, 23.100, 20.5, unknown).", []string{"layout"}, nil)
	descFrames  = prometheus.NewDesc("pushpull_relay_frames_total", "Frames in accepted relay batches.", nil, nil)
	descJobs    = prometheus.NewDesc("pushpull_relay_jobs_total", "Push jobs stored for relay frames.", nil, nil)
	descSkipped = prometheus.NewDesc("pushpull_relay_skipped_total", "Relay segments or frames that did not become a job, by reason.", []string{"reason"}, nil)
	descRemove  = prometheus.NewDesc("pushpull_relay_token_remove_calls_total", "Dead-token calls to portals, by result (sent, failed, dropped).", []string{"result"}, nil)
)

// Collector exports the relay's counters; remover may be nil (callbacks
// off).
func Collector(svc *gwrelay.Service, remover *gwrelay.Remover) prometheus.Collector {
	return &collector{svc: svc, rm: remover}
}

type collector struct {
	svc *gwrelay.Service
	rm  *gwrelay.Remover
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descBatches, descFrames, descJobs, descSkipped, descRemove} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	st := c.svc.Stats()
	for _, l := range []gwrelay.Layout{gwrelay.LayoutUnknown, gwrelay.Layout24, gwrelay.LayoutLegacy, gwrelay.Layout20} {
		ch <- prometheus.MustNewConstMetric(descBatches, prometheus.CounterValue, float64(st.Layouts[l]), l.String())
	}
	ch <- prometheus.MustNewConstMetric(descFrames, prometheus.CounterValue, float64(st.Frames))
	ch <- prometheus.MustNewConstMetric(descJobs, prometheus.CounterValue, float64(st.Jobs))
	for r, n := range st.Skipped {
		ch <- prometheus.MustNewConstMetric(descSkipped, prometheus.CounterValue, float64(n), string(r))
	}
	if c.rm != nil {
		rs := c.rm.Stats()
		ch <- prometheus.MustNewConstMetric(descRemove, prometheus.CounterValue, float64(rs.Sent), "sent")
		ch <- prometheus.MustNewConstMetric(descRemove, prometheus.CounterValue, float64(rs.Failed), "failed")
		ch <- prometheus.MustNewConstMetric(descRemove, prometheus.CounterValue, float64(rs.Dropped), "dropped")
	}
}
