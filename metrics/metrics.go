// Package metrics holds fiat's Prometheus metrics, served at /metrics on the
// admin port. It is the only package that knows about Prometheus.
package metrics

import (
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Metrics is one server's registry.
type Metrics struct {
	registry       *prometheus.Registry
	requests       *prometheus.CounterVec
	errors         *prometheus.CounterVec
	latency        *prometheus.HistogramVec
	changes        *prometheus.CounterVec
	changeDuration *prometheus.HistogramVec
	position       prometheus.Gauge
	propagation    prometheus.Histogram
}

// New registers fiat's metrics and the Go runtime's in a fresh registry.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiat_requests_total",
			Help: "Requests served through the router, by service, version and status class (2xx, 4xx, ...).",
		}, []string{"service", "version", "class"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiat_request_errors_total",
			Help: "Requests answered with a 5xx status, by service and version.",
		}, []string{"service", "version"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fiat_request_duration_seconds",
			Help:    "Time to serve a request through the router, by service and version.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"service", "version"}),
		changes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "fiat_changes_total",
			Help: "Changes to envs (deploy, rollback, promote, fork, delete), by kind and outcome.",
		}, []string{"kind", "outcome"}),
		changeDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "fiat_change_duration_seconds",
			Help:    "Server-side time of a change to an env, validation included, by kind.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
		}, []string{"kind"}),
	}
	m.position = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "fiat_change_position",
		Help: "Position in the store's history of the last change this node serves.",
	})
	m.propagation = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "fiat_change_propagation_seconds",
		Help:    "Time from a change's commit, on any node, to this node serving it.",
		Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 5, 30},
	})
	m.registry.MustRegister(m.requests, m.errors, m.latency, m.changes, m.changeDuration, m.position, m.propagation,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// Handler serves the metrics in the Prometheus text format.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Change records one change to an env and how long it took.
func (m *Metrics) Change(kind string, took time.Duration, err error) {
	outcome := "ok"
	if err != nil {
		outcome = "refused"
	}
	m.changes.WithLabelValues(kind, outcome).Inc()
	m.changeDuration.WithLabelValues(kind).Observe(took.Seconds())
}

// ChangeApplied records that this node serves the change at position,
// committed delay ago (0 for changes it loaded at start).
func (m *Metrics) ChangeApplied(position int64, delay time.Duration) {
	m.position.Set(float64(position))
	if delay > 0 {
		m.propagation.Observe(delay.Seconds())
	}
}

// Version returns the metrics of one version, resolved once so that
// recording a request is a few atomic adds and no map lookups.
func (m *Metrics) Version(service, version string) *Version {
	v := &Version{
		errors:  m.errors.WithLabelValues(service, version),
		latency: m.latency.WithLabelValues(service, version),
	}
	for i := range v.byClass {
		v.byClass[i] = m.requests.WithLabelValues(service, version, strconv.Itoa(i+1)+"xx")
	}
	return v
}

// Version is the metrics of one version.
type Version struct {
	// byClass holds the request counters of status classes 1xx to 5xx.
	byClass [5]prometheus.Counter
	errors  prometheus.Counter
	latency prometheus.Observer
}

// Observe records one request.
func (v *Version) Observe(code int, took time.Duration) {
	class := min(max(code/100, 1), 5)
	v.byClass[class-1].Inc()
	if class == 5 {
		v.errors.Inc()
	}
	v.latency.Observe(took.Seconds())
}
