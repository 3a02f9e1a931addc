package main

import (
	"context"
	"errors"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/callproof/callproof/ivr"
	"github.com/callproof/callproof/media"
	"github.com/callproof/callproof/sessions"
	"github.com/callproof/callproof/sessions/agent"
	"github.com/callproof/callproof/sessions/webhook"
)

// metrics are the node's Prometheus series. Labels are bounded sets (transport, outcome, source,
// state, store): never a call, a caller or an account.
type metrics struct {
	reg      *prometheus.Registry
	live     *prometheus.GaugeVec
	calls    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	rejected *prometheus.CounterVec
	// storeErrors counts failed operations on the state stores, by store.
	storeErrors *prometheus.CounterVec
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
	m.storeErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "callproof_store_errors_total",
		Help: "Failed operations on the state stores (attempts, replay, agent_log, audit); each failed its call closed."},
		[]string{"store"})
	for _, s := range []string{"attempts", "replay", "agent_log", "audit"} {
		m.storeErrors.WithLabelValues(s)
	}
	reg.MustRegister(m.live, m.calls, m.duration, m.rejected, m.storeErrors)
	m.legTotals()
	return m
}

// legTotals exports the frame and digit counters every leg of the process adds to.
func (m *metrics) legTotals() {
	counter := func(name, help string, labels prometheus.Labels, get func(media.Totals) uint64) {
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(get(media.ReadTotals())) }))
	}
	for _, src := range []media.DigitSource{media.SourceEvent, media.SourceRFC4733, media.SourceSIPInfo, media.SourceInband} {
		src := src
		counter("callproof_digits_total", "Key presses reported to the flow, by how they arrived.",
			prometheus.Labels{"source": src.String()}, func(t media.Totals) uint64 { return t.Digits[src] })
	}
	counter("callproof_digit_duplicates_total", "Key presses that arrived from a second source and were reported once.",
		nil, func(t media.Totals) uint64 { return t.Duplicates })
	counter("callproof_frames_in_total", "Inbound audio frames received (normally 20 ms each).",
		nil, func(t media.Totals) uint64 { return t.FramesIn })
	counter("callproof_frames_late_total", "Outbound frames a paced writer (AudioSocket, WebRTC, SIP) sent behind schedule.",
		nil, func(t media.Totals) uint64 { return t.FramesLate })
	counter("callproof_dropped_total", "What a leg dropped, by what it was: events the flow fell behind on, prompts the peer "+
		"did not keep up with, outbound frames the socket refused.", prometheus.Labels{"what": "event"},
		func(t media.Totals) uint64 { return t.EventsDropped })
	counter("callproof_dropped_total", "What a leg dropped, by what it was: events the flow fell behind on, prompts the peer "+
		"did not keep up with, outbound frames the socket refused.", prometheus.Labels{"what": "prompt"},
		func(t media.Totals) uint64 { return t.PromptsRefused })
	counter("callproof_dropped_total", "What a leg dropped, by what it was: events the flow fell behind on, prompts the peer "+
		"did not keep up with, outbound frames the socket refused.", prometheus.Labels{"what": "frame"},
		func(t media.Totals) uint64 { return t.FramesDropped })
}

// agentHub exports the agent stream's connections and deliveries.
func (m *metrics) agentHub(h *agent.Hub) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "callproof_agent_connections",
		Help: "Agent WebSocket connections open on this node."}, func() float64 { return float64(h.Stats().Conns) }))
	for state, get := range map[string]func(agent.Stats) uint64{
		"published": func(s agent.Stats) uint64 { return s.Published }, "delivered": func(s agent.Stats) uint64 { return s.Delivered },
	} {
		get := get
		m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "callproof_agent_messages_total",
			Help:        "Agent messages this node stored (published) and fanned out to its agents (delivered, from any node).",
			ConstLabels: prometheus.Labels{"state": state}}, func() float64 { return float64(get(h.Stats())) }))
	}
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "callproof_agent_slow_disconnects_total",
		Help: "Agents disconnected for falling behind."}, func() float64 { return float64(h.Stats().SlowDisconnects) }))
	m.reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "callproof_agent_feed_errors_total",
		Help: "Failed reads of the shared agent log's feed (each retried)."}, func() float64 { return float64(h.Stats().FeedErrors) }))
}

// storeError counts a failed store operation. A cancelled context is the call ending, not
// the store failing.
func (m *metrics) storeError(store string, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		m.storeErrors.WithLabelValues(store).Inc()
	}
}

// countedAttempts, countedReplay, countedPublisher and countedRecorder count their store's
// errors; the flow still sees every error and fails closed on it.
type countedAttempts struct {
	sessions.Attempts
	m *metrics
}

func (c countedAttempts) Check(ctx context.Context, key string) (sessions.LockState, error) {
	s, err := c.Attempts.Check(ctx, key)
	c.m.storeError("attempts", err)
	return s, err
}

func (c countedAttempts) Fail(ctx context.Context, key string, r sessions.Rule) (sessions.LockState, error) {
	s, err := c.Attempts.Fail(ctx, key, r)
	c.m.storeError("attempts", err)
	return s, err
}

func (c countedAttempts) Reset(ctx context.Context, key string) error {
	err := c.Attempts.Reset(ctx, key)
	c.m.storeError("attempts", err)
	return err
}

type countedReplay struct {
	sessions.Replay
	m *metrics
}

func (c countedReplay) Consume(ctx context.Context, id string, until time.Time) (bool, error) {
	first, err := c.Replay.Consume(ctx, id, until)
	c.m.storeError("replay", err)
	return first, err
}

type countedPublisher struct {
	sessions.Publisher
	m *metrics
}

func (c countedPublisher) Publish(ctx context.Context, msg sessions.AgentMessage) error {
	err := c.Publisher.Publish(ctx, msg)
	c.m.storeError("agent_log", err)
	return err
}

type countedRecorder struct {
	ivr.Recorder
	m *metrics
}

func (c countedRecorder) Record(ctx context.Context, r ivr.Result) error {
	err := c.Recorder.Record(ctx, r)
	c.m.storeError("audit", err)
	return err
}
