package carrier

import (
	"strconv"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
)

// Metrics of the metering pipeline.
type Metrics struct {
	Consumed     prometheus.Counter
	Applied      prometheus.Counter
	Duplicates   prometheus.Counter
	Late         prometheus.Counter
	Held         prometheus.Counter
	HeldExpired  prometheus.Counter
	DeadLettered *prometheus.CounterVec
	Lag          *prometheus.GaugeVec
	// Sessions counts the carrier's session requests (sessions.go) by
	// operation (open, update, terminate) and outcome (granted, final,
	// charged, or the error code).
	Sessions *prometheus.CounterVec
	healthy  atomic.Bool
}

// NewMetrics registers the pipeline's metrics with reg.
func NewMetrics(reg prometheus.Registerer) *Metrics {
	counter := func(name, help string) prometheus.Counter {
		c := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "wuyou", Subsystem: "metering", Name: name, Help: help})
		reg.MustRegister(c)
		return c
	}
	m := &Metrics{
		Consumed:   counter("events_consumed_total", "Usage events read from carrier.usage.v1."),
		Applied:    counter("events_applied_total", "Usage events applied to balances for the first time."),
		Duplicates: counter("events_duplicate_total", "Usage events recognised as already applied."),
		Late:       counter("events_late_total", "Usage events older than the dedupe window, sent to the late topic."),
		Held:       counter("events_held_total", "Usage events for unregistered MSISDNs, kept until enrolment."),
		HeldExpired: counter("events_held_expired_total",
			"Held usage events whose MSISDN was not enrolled within the dedupe window, sent to the late topic."),
		DeadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: "wuyou", Subsystem: "metering", Name: "events_dead_lettered_total",
			Help: "Usage events that cannot be applied, by error code.",
		}, []string{"error_code"}),
		Lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: "wuyou", Subsystem: "metering", Name: "consumer_lag",
			Help: "Messages behind the partition's high watermark, as of the last message read.",
		}, []string{"partition"}),
	}
	m.Sessions = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "wuyou", Subsystem: "sessions", Name: "requests_total",
		Help: "The carrier's real-time session requests, by operation and outcome (granted, final, charged, or the error code).",
	}, []string{"op", "outcome"})
	reg.MustRegister(m.DeadLettered, m.Lag, m.Sessions)
	m.healthy.Store(true)
	return m
}

func (m *Metrics) observeLag(msg kafka.Message) {
	m.Lag.WithLabelValues(strconv.Itoa(msg.Partition)).Set(float64(msg.HighWaterMark - msg.Offset - 1))
}

func (m *Metrics) setHealthy(ok bool) { m.healthy.Store(ok) }

// Healthy is false while the consumer cannot store a batch.
func (m *Metrics) Healthy() bool { return m.healthy.Load() }
