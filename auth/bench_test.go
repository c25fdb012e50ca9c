package auth

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// benchConcurrency is how many requests are in flight at once.
const benchConcurrency = 200

// BenchmarkRequest measures one request's way through the gate at 200
// concurrent goroutines, against baselines without it, and reports latency
// percentiles: baseline is the harness alone; meter-only is a server without
// auth that still writes a durable usage record; authenticate is the key
// lookup alone; full is Authenticate+Admit+Finish.
func BenchmarkRequest(b *testing.B) {
	ctx := context.Background()
	cases := []struct {
		name string
		op   func(g *Gate, secret string, n int64) error
	}{
		{"baseline", func(*Gate, string, int64) error { return nil }},
		{"meter-only", func(g *Gate, _ string, n int64) error {
			a, err := g.Admit(ctx, nil, "m", 1)
			if err != nil {
				return err
			}
			return a.Finish(ctx, Usage{RequestID: fmt.Sprint(n), Images: 1, Status: 200})
		}},
		{"authenticate", func(g *Gate, secret string, _ int64) error {
			_, err := g.Authenticate(ctx, "Bearer "+secret, "")
			return err
		}},
		{"full", func(g *Gate, secret string, n int64) error {
			k, err := g.Authenticate(ctx, "Bearer "+secret, "")
			if err != nil {
				return err
			}
			a, err := g.Admit(ctx, k, "m", 1)
			if err != nil {
				return err
			}
			return a.Finish(ctx, Usage{RequestID: fmt.Sprint(n), Images: 1, Status: 200})
		}},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			s := openTestStore(b)
			g, err := New(s, Options{})
			if err != nil {
				b.Fatal(err)
			}
			// 20 keys with limits far above what the benchmark reaches, so
			// every check runs and none refuses.
			var secrets []string
			for i := range 20 {
				secret, _, err := g.CreateKey(ctx, KeySpec{Name: fmt.Sprint("bench", i), Limits: Limits{
					RequestsPerMinute: 1 << 30, ImagesPerMinute: 1 << 30, ImagesPerDay: 1 << 30, ImageQuota: 1 << 40}})
				if err != nil {
					b.Fatal(err)
				}
				secrets = append(secrets, secret)
			}
			var (
				mu        sync.Mutex
				latencies []time.Duration
				seq       atomic.Int64
			)
			b.SetParallelism((benchConcurrency + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				var mine []time.Duration
				for pb.Next() {
					n := seq.Add(1)
					start := time.Now()
					if err := c.op(g, secrets[n%int64(len(secrets))], n); err != nil {
						b.Error(err)
						return
					}
					mine = append(mine, time.Since(start))
				}
				mu.Lock()
				latencies = append(latencies, mine...)
				mu.Unlock()
			})
			b.StopTimer()
			reportPercentiles(b, latencies)
		})
	}
}

func reportPercentiles(b *testing.B, d []time.Duration) {
	if len(d) == 0 {
		return
	}
	slices.Sort(d)
	at := func(p float64) float64 {
		return float64(d[int(p*float64(len(d)-1))]) / float64(time.Microsecond)
	}
	b.ReportMetric(at(0.50), "p50-µs")
	b.ReportMetric(at(0.99), "p99-µs")
}
