package models

import (
	"context"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// BenchmarkColdVsWarm: the first request to an unloaded tiny model (it pays
// for session creation) against the next one; cold/warm is their ratio.
func BenchmarkColdVsWarm(b *testing.B) {
	open := testOpener(b)
	dir := benchModels(b)
	r, err := NewRegistry(RegistryOptions{Open: open, Dir: dir, KeepAlive: -1})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close(context.Background())
	req := spec.Request{Prompt: "a lighthouse", Steps: 4, Seed: 1, HasSeed: true}
	var cold, warm time.Duration
	for b.Loop() {
		r.mu.Lock()
		e := r.entries["alpha"]
		r.mu.Unlock()
		r.unload(e, "benchmark")
		start := time.Now()
		if _, err := r.Generate(context.Background(), "alpha", req); err != nil {
			b.Fatal(err)
		}
		cold += time.Since(start)
		start = time.Now()
		if _, err := r.Generate(context.Background(), "alpha", req); err != nil {
			b.Fatal(err)
		}
		warm += time.Since(start)
	}
	n := float64(b.N)
	b.ReportMetric(float64(cold.Milliseconds())/n, "cold-ms")
	b.ReportMetric(float64(warm.Microseconds())/n/1000, "warm-ms")
	b.ReportMetric(float64(cold)/float64(warm), "cold/warm")
}
