package latency

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		out := make([]time.Duration, len(v))
		for i, x := range v {
			out[i] = time.Duration(x) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted
	}
	tests := []struct {
		name          string
		samples       []time.Duration
		elapsed       time.Duration
		p50, p90, p99 time.Duration
		mean          time.Duration
		perSecond     float64
	}{
		{"one", ms(7), time.Second, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 7 * time.Millisecond, 1},
		{"four", ms(4, 1, 3, 2), 2 * time.Second, 2 * time.Millisecond, 4 * time.Millisecond, 4 * time.Millisecond, 2500 * time.Microsecond, 2},
		{"hundred", ms(hundred...), 10 * time.Second, 50 * time.Millisecond, 90 * time.Millisecond, 99 * time.Millisecond, 50500 * time.Microsecond, 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.samples, tt.elapsed)
			if s.N != len(tt.samples) || s.P50 != tt.p50 || s.P90 != tt.p90 || s.P99 != tt.p99 || s.Mean != tt.mean || s.PerSecond != tt.perSecond {
				t.Errorf("Summarize = %+v, want p50 %v p90 %v p99 %v mean %v %v/s", s, tt.p50, tt.p90, tt.p99, tt.mean, tt.perSecond)
			}
		})
	}
	if s := Summarize(nil, time.Second); s.N != 0 || s.PerSecond != 0 {
		t.Errorf("Summarize(nil) = %+v, want zeros", s)
	}
}

func TestMeasure(t *testing.T) {
	t.Run("runs n operations", func(t *testing.T) {
		var calls atomic.Int64
		s, err := Measure(context.Background(), 50, 4, func(context.Context) error {
			calls.Add(1)
			time.Sleep(100 * time.Microsecond)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if calls.Load() != 50 || s.N != 50 {
			t.Errorf("calls %d, N %d; want 50", calls.Load(), s.N)
		}
		if s.P50 < 100*time.Microsecond || s.PerSecond <= 0 {
			t.Errorf("summary %+v: p50 below the sleep or no rate", s)
		}
	})
	t.Run("first error stops", func(t *testing.T) {
		boom := errors.New("boom")
		var calls atomic.Int64
		_, err := Measure(context.Background(), 1000, 1, func(context.Context) error {
			if calls.Add(1) == 3 {
				return boom
			}
			return nil
		})
		if !errors.Is(err, boom) {
			t.Errorf("err = %v, want boom", err)
		}
		if calls.Load() != 3 {
			t.Errorf("calls = %d, want 3", calls.Load())
		}
	})
	t.Run("bad arguments", func(t *testing.T) {
		for _, a := range [][2]int{{0, 1}, {1, 0}, {-1, 1}} {
			if _, err := Measure(context.Background(), a[0], a[1], func(context.Context) error { return nil }); !errors.Is(err, ErrBadArgs) {
				t.Errorf("Measure(n=%d, workers=%d) err = %v, want ErrBadArgs", a[0], a[1], err)
			}
		}
	})
}
