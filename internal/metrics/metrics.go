// Package metrics defines Twofold's Prometheus metrics and the HTTP middleware that records
// requests. Collectors live on one explicit registry, so tests and several servers in one
// process do not collide.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/twofold-auth/twofold/internal/twofold"
)

// Metrics holds the collectors.
type Metrics struct {
	reg           *prometheus.Registry
	InFlight      prometheus.Gauge
	Requests      *prometheus.CounterVec   // route, code
	Latency       *prometheus.HistogramVec // route
	Verifications *prometheus.CounterVec   // outcome
	Messages      *prometheus.CounterVec   // channel, provider, status
	Refusals      *prometheus.CounterVec   // channel, reason
	HandOver      *prometheus.HistogramVec // provider
	Limited       *prometheus.CounterVec   // limit: api_key, device, device_user, address, device_streams, verify_failures, verify_checks, sends, pending_approvals
	Approvals     *prometheus.CounterVec   // status
	Callbacks     *prometheus.CounterVec   // outcome
	Pushes        *prometheus.CounterVec   // kind, outcome
	AuditFailures prometheus.Counter       // audit events that could not be recorded
}

// New registers the collectors (and the Go runtime's) on a fresh registry.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		InFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "twofold_http_requests_in_flight", Help: "HTTP requests being served now.",
		}),
		Requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_http_requests_total", Help: "HTTP requests by route pattern and status code.",
		}, []string{"route", "code"}),
		Latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "twofold_http_request_duration_seconds", Help: "HTTP request latency by route pattern.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route"}),
		Verifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_verifications_total", Help: "Token verifications by outcome.",
		}, []string{"outcome"}),
		Messages: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_messages_total", Help: "Messages handed to delivery by channel, provider and outcome (sent, failed, recorded, sandbox).",
		}, []string{"channel", "provider", "status"}),
		Refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_message_refusals_total", Help: "Codes not sent, by channel and reason (limit_user, limit_number, limit_country, limit_app, country, landline, premium_rate, app_installed).",
		}, []string{"channel", "reason"}),
		HandOver: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "twofold_delivery_duration_seconds", Help: "Time to hand a message to its provider, retries included.",
			Buckets: []float64{.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"provider"}),
		Limited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_rate_limited_total", Help: "Requests refused with 429 (60003) by limit; device_streams counts event streams ended by a newer one over the bound.",
		}, []string{"limit"}),
		Approvals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_approvals_total", Help: "OneTouch answers by resulting status.",
		}, []string{"status"}),
		Callbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_callbacks_total", Help: "Callback delivery attempts by outcome.",
		}, []string{"outcome"}),
		Pushes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "twofold_pushes_total", Help: "Push notifications to devices by kind (webpush, ntfy) and outcome.",
		}, []string{"kind", "outcome"}),
		AuditFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "twofold_audit_write_failures_total", Help: "Audit trail events that could not be recorded (each is logged at ERROR).",
		}),
	}
	m.reg.MustRegister(m.InFlight, m.Requests, m.Latency, m.Verifications, m.Messages, m.Refusals, m.HandOver, m.Limited, m.Approvals, m.Callbacks, m.Pushes,
		m.AuditFailures,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves /metrics.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Instrument records every request through next by its route pattern (never the raw path, so
// ids and tokens do not become label values) and status code.
func (m *Metrics) Instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.InFlight.Inc()
		defer m.InFlight.Dec()
		rec := &statusRecorder{ResponseWriter: w, code: http.StatusOK}
		next.ServeHTTP(rec, r)
		route := r.Pattern
		if route == "" {
			route = "unmatched"
		}
		m.Requests.WithLabelValues(route, strconv.Itoa(rec.code)).Inc()
		m.Latency.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

type statusRecorder struct {
	http.ResponseWriter
	code    int
	written bool
}

func (s *statusRecorder) WriteHeader(code int) {
	if !s.written {
		s.code, s.written = code, true
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Write(b []byte) (int, error) {
	s.written = true
	return s.ResponseWriter.Write(b)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// DeviceStreams reports the number of connected device event streams, read from count.
func (m *Metrics) DeviceStreams(count func() float64) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "twofold_device_streams", Help: "Devices connected by Server-Sent Events.",
	}, count))
}

// Delivered counts a message handed to delivery (deliver.Observer).
func (m *Metrics) Delivered(ch twofold.Channel, provider, status string, took time.Duration) {
	m.Messages.WithLabelValues(string(ch), provider, status).Inc()
	if took > 0 {
		m.HandOver.WithLabelValues(provider).Observe(took.Seconds())
	}
}

// Refused counts a code not sent, by reason (deliver.Observer).
func (m *Metrics) Refused(ch twofold.Channel, reason string) {
	m.Refusals.WithLabelValues(string(ch), reason).Inc()
}
