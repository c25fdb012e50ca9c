package models

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// BenchmarkBatching: c concurrent same-shape requests (different seeds and
// prompts) through the registry, batched (max_batch 8) against one at a
// time (max_batch 1). images/s is the figure docs/performance.md tabulates.
// BATCH_PRESET is not read: the tiny model is what fits a CPU run.
func BenchmarkBatching(b *testing.B) {
	open := testOpener(b)
	dir := benchModels(b)
	for _, c := range []int{1, 2, 4, 8} {
		for _, mode := range []struct {
			name  string
			batch BatchOptions
		}{{"unbatched", BatchOptions{MaxBatch: 1}}, {"batched", BatchOptions{MaxBatch: 8, Window: 2 * time.Millisecond}}} {
			b.Run(fmt.Sprintf("c=%d/%s", c, mode.name), func(b *testing.B) {
				r, err := NewRegistry(RegistryOptions{Open: open, Dir: dir, KeepAlive: -1, QueueSize: 16, Batch: mode.batch})
				if err != nil {
					b.Fatal(err)
				}
				defer r.Close(context.Background())
				if _, err := r.Generate(context.Background(), "alpha", spec.Request{Prompt: "warm", Steps: 1}); err != nil {
					b.Fatal(err)
				}
				images := 0
				began := time.Now()
				for i := 0; b.Loop(); i++ {
					var wg sync.WaitGroup
					for k := range c {
						wg.Add(1)
						go func() {
							defer wg.Done()
							req := spec.Request{Prompt: fmt.Sprintf("a lighthouse %d", k), Steps: 8, Seed: uint64(i*c + k), HasSeed: true}
							if _, err := r.Generate(context.Background(), "alpha", req); err != nil {
								b.Error(err)
							}
						}()
					}
					wg.Wait()
					images += c
				}
				b.ReportMetric(float64(images)/time.Since(began).Seconds(), "images/s")
			})
		}
	}
}
