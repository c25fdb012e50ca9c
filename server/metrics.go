package server

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/sdgate/sdgate/sd/spec"
)

// metrics are this server's Prometheus series, on a registry of its own so
// several servers (tests) never share state.
type metrics struct {
	registry    *prometheus.Registry
	requests    *prometheus.CounterVec
	latency     *prometheus.HistogramVec
	generation  *prometheus.HistogramVec
	images      prometheus.Counter
	steps       *prometheus.CounterVec
	stepsPerSec *prometheus.GaugeVec

	// series holds each (route, method, status)'s children of requests and
	// latency: looking them up by label values hashed and allocated on
	// every request.
	series sync.Map // requestSeriesKey -> requestSeries
}

type requestSeriesKey struct {
	route, method string
	status        int
}

type requestSeries struct {
	count   prometheus.Counter
	latency prometheus.Observer
}

// newMetrics registers every series; queueDepth may be nil, stored reports
// the URL image store's count and bytes.
func newMetrics(queueDepth func() int, stored func() (int, int64)) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdgate_http_requests_total", Help: "HTTP requests by route, method and status.",
		}, []string{"route", "method", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sdgate_http_request_duration_seconds",
			Help:    "HTTP request latency by route and method.",
			Buckets: []float64{.005, .025, .1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}, []string{"route", "method"}),
		generation: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "sdgate_generation_duration_seconds",
			Help:    "Time the pipeline spent on one generation request (all its images), by model.",
			Buckets: []float64{.05, .1, .25, .5, 1, 2, 4, 8, 16, 32, 64, 128},
		}, []string{"model"}),
		images: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "sdgate_images_generated_total", Help: "Images delivered to clients.",
		}),
		steps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "sdgate_denoise_steps_total", Help: "Denoising steps run (steps x images), by model.",
		}, []string{"model"}),
		stepsPerSec: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "sdgate_denoise_steps_per_second", Help: "Denoising speed of the latest generation (steps x images / pipeline time), by model.",
		}, []string{"model"}),
	}
	depth := func() float64 {
		if queueDepth == nil {
			return 0
		}
		return float64(queueDepth())
	}
	m.registry.MustRegister(
		m.requests, m.latency, m.generation, m.images, m.steps, m.stepsPerSec,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sdgate_queue_depth", Help: "Generation jobs waiting for the GPU worker.",
		}, depth),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sdgate_stored_images", Help: "Images held for response_format=url.",
		}, func() float64 { n, _ := stored(); return float64(n) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "sdgate_stored_image_bytes", Help: "Bytes held for response_format=url images.",
		}, func() float64 { _, b := stored(); return float64(b) }),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

func (m *metrics) observeRequest(route, method string, status int, took time.Duration) {
	method = methodLabel(method)
	key := requestSeriesKey{route, method, status}
	v, ok := m.series.Load(key)
	if !ok {
		v, _ = m.series.LoadOrStore(key, requestSeries{
			count:   m.requests.WithLabelValues(route, method, strconv.Itoa(status)),
			latency: m.latency.WithLabelValues(route, method),
		})
	}
	series := v.(requestSeries)
	series.count.Inc()
	series.latency.Observe(took.Seconds())
}

// methodLabel keeps the method label bounded: a client may send any token
// as its method, and each would otherwise become a series of its own.
func methodLabel(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

func (m *metrics) observeGeneration(model string, res spec.Result) {
	if res.Total <= 0 {
		return
	}
	m.generation.WithLabelValues(model).Observe(res.Total.Seconds())
	steps := float64(res.Steps * len(res.Images))
	m.steps.WithLabelValues(model).Add(steps)
	m.stepsPerSec.WithLabelValues(model).Set(steps / res.Total.Seconds())
}
