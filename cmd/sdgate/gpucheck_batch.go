package main

import (
	"context"
	"fmt"
	"time"

	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/sd/spec"
)

// batchFigures is gpucheck's batching table: for each c, c guided requests
// of one shape (different seeds and prompts) run as one batch
// (sd.Model.GenerateBatch, one UNet call per step) against one after
// another, in images/s; docs/performance.md's "batching" rows.
func batchFigures(ctx context.Context, m *sd.Model, base sd.Request, sizes []int, steps, runs int, line func(key, format string, args ...any)) error {
	base.Steps, base.Guidance, base.HasGuidance = steps, 7.5, true
	reqs := func(c, run int) []sd.Request {
		out := make([]sd.Request, c)
		for i := range out {
			r := base
			r.Prompt = fmt.Sprintf("%s, variant %d", base.Prompt, i)
			r.Seed = uint64(1000*run + i)
			out[i] = r
		}
		return out
	}
	for _, c := range sizes {
		var alone, batched time.Duration
		for run := range runs {
			rs := reqs(c, run)
			began := time.Now()
			for _, r := range rs {
				if _, err := m.Generate(ctx, r); err != nil {
					return fmt.Errorf("batching, alone: %w", err)
				}
			}
			alone += time.Since(began)
			items := make([]spec.BatchItem, c)
			for i, r := range rs {
				items[i] = spec.BatchItem{Request: r}
			}
			began = time.Now()
			for _, res := range m.GenerateBatch(ctx, items) {
				if res.Err != nil {
					return fmt.Errorf("batching, batched: %w", res.Err)
				}
			}
			batched += time.Since(began)
		}
		images := float64(c * runs)
		a, b := images/alone.Seconds(), images/batched.Seconds()
		line(fmt.Sprintf("batching c=%d", c), "%.3f images/s alone, %.3f batched, %.2fx (%d steps, guidance 7.5, %dx%d)",
			a, b, b/a, steps, base.Width, base.Height)
	}
	return nil
}
