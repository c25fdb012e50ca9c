package server

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/models"
)

// registerSources exports the counters other packages keep (the result
// cache, the model registry) as Prometheus metrics read at scrape time.
func (m *metrics) registerSources(c *cache.Cache, modelStats func() models.Stats) {
	counter := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
	}
	gauge := func(name, help string, f func() float64) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	if c != nil {
		m.registry.MustRegister(
			counter("sdgate_cache_hits_total", "Requests answered from the result cache (coalesced waiters included).",
				func() float64 { s := c.Stats(); return float64(s.Hits + s.Coalesced) }),
			counter("sdgate_cache_misses_total", "Cacheable requests the GPU had to compute.",
				func() float64 { return float64(c.Stats().Misses) }),
			counter("sdgate_cache_remote_coalesced_total", "Computations another instance sharing the cache ran for this one.",
				func() float64 { return float64(c.Stats().RemoteCoalesced) }),
			counter("sdgate_cache_bypassed_total", "Requests not cacheable (no seed, prompt caching off).",
				func() float64 { return float64(c.Stats().Bypassed) }),
			counter("sdgate_cache_evictions_total", "Entries evicted to stay within the byte bound.",
				func() float64 { return float64(c.Stats().Store.Evictions) }),
			gauge("sdgate_cache_bytes", "Bytes held by the result cache.",
				func() float64 { return float64(c.Stats().Store.Bytes) }),
			gauge("sdgate_cache_entries", "Entries held by the result cache.",
				func() float64 { return float64(c.Stats().Store.Entries) }),
		)
	}
	if modelStats != nil {
		m.registry.MustRegister(
			gauge("sdgate_models_resident", "Models whose sessions are loaded now.",
				func() float64 { return float64(modelStats().Resident) }),
			gauge("sdgate_models_broken", "Model folders that failed validation or their last load.",
				func() float64 { return float64(modelStats().Broken) }),
			counter("sdgate_model_loads_total", "Model loads (cold starts).",
				func() float64 { return float64(modelStats().Loads) }),
			counter("sdgate_model_unloads_total", "Model unloads (keep-alive expiry or resident limit).",
				func() float64 { return float64(modelStats().Unloads) }),
			counter("sdgate_model_load_seconds_total", "Time spent loading models.",
				func() float64 { return float64(modelStats().LoadNanos) / 1e9 }),
			newBatchSizeCollector(modelStats),
		)
	}
}
