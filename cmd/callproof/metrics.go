package main

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/callproof/callproof/sessions/webhook"
)

// metrics are the node's Prometheus series. Labels are bounded: transport and outcome only.
type metrics struct {
	reg      *prometheus.Registry
	live     *prometheus.GaugeVec
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
}

// webhookStates exports the CRM deliveries by state: gauges for what is queued now (pending,
// retrying, in flight, dead-lettered) and counters since start.
func (m *metrics) webhookStates(d *webhook.Dispatcher) {
	stats := func() webhook.Stats {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, _ := d.Stats(ctx)
		return st
	}
	for state, get := range map[string]func(webhook.Stats) int{
		"pending": func(s webhook.Stats) int { return s.Queue.Pending }, "retrying": func(s webhook.Stats) int { return s.Queue.Retrying },
		"in_flight": func(s webhook.Stats) int { return s.Queue.Leased }, "dead": func(s webhook.Stats) int { return s.Queue.Dead },
	} {
		get := get
		m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callproof_crm_webhook_queued",
			Help: "CRM webhook deliveries queued now, by state.", ConstLabels: prometheus.Labels{"state": state}},
			func() float64 { return float64(get(stats())) }))
	}
	for state, get := range map[string]func(webhook.Stats) uint64{
		"enqueued": func(s webhook.Stats) uint64 { return s.Enqueued }, "attempted": func(s webhook.Stats) uint64 { return s.Attempts },
		"delivered": func(s webhook.Stats) uint64 { return s.Delivered }, "retried": func(s webhook.Stats) uint64 { return s.Retries },
		"dead_lettered": func(s webhook.Stats) uint64 { return s.DeadLettered },
	} {
		get := get
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "callproof_crm_webhook_deliveries_total",
			Help: "CRM webhook deliveries since start, by what happened.", ConstLabels: prometheus.Labels{"state": state}},
			func() float64 { return float64(get(stats())) }))
	}
}

func newMetrics() *metrics {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m := &metrics{
		reg: reg,
		live: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "callproof_live_calls",
			Help: "Calls in progress, by transport."}, []string{"transport"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callproof_calls_total",
			Help: "Calls ended, by transport and outcome."}, []string{"transport", "outcome"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "callproof_verification_seconds",
			Help: "Time from call start to the decision.", Buckets: prometheus.ExponentialBuckets(5, 1.5, 10)},
			[]string{"outcome"}),
	}
	m.rejected = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callproof_streams_rejected_total",
		Help: "Stream attempts refused before the call started, by reason."}, []string{"reason"})
	reg.MustRegister(m.live, m.calls, m.duration, m.rejected)
	return m
}
