// Package latency measures the latency distribution and throughput of a
// repeated operation, for benchmarks only: the cache's hit path and the
// server's X-Cache: HIT path over loopback.
package latency

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// ErrBadArgs: Measure was asked for no operations or no workers.
var ErrBadArgs = errors.New("latency: bad arguments")

// Summary describes n timed operations.
type Summary struct {
	N              int
	P50, P90, P99  time.Duration
	Min, Max, Mean time.Duration
	Elapsed        time.Duration // wall time of the whole run
	PerSecond      float64       // completed operations per second of Elapsed
	// Samples are the latencies, sorted, for merging runs with Summarize.
	Samples []time.Duration
}

// Measure runs op n times on workers goroutines and summarises the
// latencies. The first error stops the run and is returned.
func Measure(ctx context.Context, n, workers int, op func(ctx context.Context) error) (Summary, error) {
	if n <= 0 || workers <= 0 {
		return Summary{}, fmt.Errorf("%w: n=%d workers=%d", ErrBadArgs, n, workers)
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	samples := make([]time.Duration, n)
	next := make(chan int, n)
	for i := range n {
		next <- i
	}
	close(next)

	start := time.Now()
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				if ctx.Err() != nil {
					return
				}
				t := time.Now()
				if err := op(ctx); err != nil {
					cancel(fmt.Errorf("operation %d: %w", i, err))
					return
				}
				samples[i] = time.Since(t)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := context.Cause(ctx); err != nil {
		return Summary{}, err
	}
	return Summarize(samples, elapsed), nil
}

// Summarize computes the figures of samples (nearest-rank percentiles);
// elapsed is the run's wall time for PerSecond.
func Summarize(samples []time.Duration, elapsed time.Duration) Summary {
	if len(samples) == 0 {
		return Summary{Elapsed: elapsed}
	}
	sorted := slices.Clone(samples)
	slices.Sort(sorted)
	var sum time.Duration
	for _, d := range sorted {
		sum += d
	}
	s := Summary{
		N:       len(sorted),
		P50:     percentile(sorted, 50),
		P90:     percentile(sorted, 90),
		P99:     percentile(sorted, 99),
		Min:     sorted[0],
		Max:     sorted[len(sorted)-1],
		Mean:    sum / time.Duration(len(sorted)),
		Elapsed: elapsed,
		Samples: sorted,
	}
	if elapsed > 0 {
		s.PerSecond = float64(len(sorted)) / elapsed.Seconds()
	}
	return s
}

// percentile is the nearest-rank p-th percentile of sorted samples.
func percentile(sorted []time.Duration, p int) time.Duration {
	rank := (p*len(sorted) + 99) / 100 // ceil(p/100 * n)
	return sorted[max(rank, 1)-1]
}

// Reporter is what testing.B offers for custom metrics.
type Reporter interface {
	ReportMetric(n float64, unit string)
}

// Report adds p50, p99 (in ns) and requests per second to a benchmark's
// output.
func (s Summary) Report(r Reporter) {
	r.ReportMetric(float64(s.P50.Nanoseconds()), "p50-ns")
	r.ReportMetric(float64(s.P99.Nanoseconds()), "p99-ns")
	r.ReportMetric(s.PerSecond, "req/s")
}
