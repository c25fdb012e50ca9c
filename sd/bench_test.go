package sd_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

// peakRSSMiB is the process's peak resident set (VmHWM), or 0 off Linux.
func peakRSSMiB() float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmHWM:" {
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

// BenchmarkLoad: session creation for all networks of the tiny preset.
func BenchmarkLoad(b *testing.B) {
	rt := runtimeForTest(b)
	dir := writeModel(b, synth.Options{})
	for b.Loop() {
		m, err := sd.Load(context.Background(), rt, dir, sd.LoadOptions{})
		if err != nil {
			b.Fatal(err)
		}
		m.Close()
	}
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// BenchmarkUNet: one UNet call, batch 1 and 2 (guidance), 64x64 and 256x256.
func BenchmarkUNet(b *testing.B) {
	m := loadModel(b, synth.Options{})
	for _, size := range []int64{64, 256} {
		for _, batch := range []int{1, 2} {
			b.Run(fmt.Sprintf("%dx%d/batch%d", size, size, batch), func(b *testing.B) {
				step, done := sd.UNetBench(b, m, batch, size/8, size/8)
				defer done()
				for b.Loop() {
					if err := step(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
			})
		}
	}
}

// BenchmarkUNetAttention: one guided UNet call at 256x256 with attention
// as MatMul-Softmax-MatMul and as com.microsoft MultiHeadAttention (synth
// --attention fused): the CPU ratio of the two graphs.
func BenchmarkUNetAttention(b *testing.B) {
	for _, fused := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "fused"}[fused]
		b.Run(name, func(b *testing.B) {
			m := loadModel(b, synth.Options{FusedAttention: fused})
			step, done := sd.UNetBench(b, m, 2, 32, 32)
			defer done()
			for b.Loop() {
				if err := step(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkGenerate: end to end, tiny preset, 256x256, 20 steps, guidance
// on. overhead-ratio = pipeline time / time inside ONNX Runtime (target <= 1.05).
func BenchmarkGenerate(b *testing.B) {
	m := loadModel(b, synth.Options{})
	var total, inORT time.Duration
	for b.Loop() {
		res, err := m.Generate(context.Background(), sd.Request{Prompt: "a lighthouse at dusk", Width: 256, Height: 256, Steps: 20, Seed: 1, HasSeed: true})
		if err != nil {
			b.Fatal(err)
		}
		total += res.Total
		inORT += res.ORT
	}
	b.ReportMetric(float64(total)/float64(inORT), "overhead-ratio")
	b.ReportMetric(peakRSSMiB(), "peak-RSS-MiB")
}

// BenchmarkBatch: n=4 in one call against four calls of n=1 (tiny, 256x256,
// 20 steps); batch-gain = images/s batched / images/s one by one.
func BenchmarkBatch(b *testing.B) {
	m := loadModel(b, synth.Options{})
	req := sd.Request{Prompt: "a lighthouse at dusk", Width: 256, Height: 256, Steps: 20, Seed: 1, HasSeed: true}
	var batched, single time.Duration
	for b.Loop() {
		start := time.Now()
		four := req
		four.N = 4
		if _, err := m.Generate(context.Background(), four); err != nil {
			b.Fatal(err)
		}
		batched += time.Since(start)
		start = time.Now()
		for i := range 4 {
			one := req
			one.Seed += uint64(i)
			if _, err := m.Generate(context.Background(), one); err != nil {
				b.Fatal(err)
			}
		}
		single += time.Since(start)
	}
	b.ReportMetric(float64(single)/float64(batched), "batch-gain")
	b.ReportMetric(4*float64(b.N)/batched.Seconds(), "images/s-batched")
	b.ReportMetric(4*float64(b.N)/single.Seconds(), "images/s-single")
}

// BenchmarkAllocsPerStep: Go allocations per denoising step, measured as the
// difference between a 22-step and a 2-step generation (the rest of the
// pipeline allocates the same in both).
func BenchmarkAllocsPerStep(b *testing.B) {
	m := loadModel(b, synth.Options{})
	// allocs runs a generation and returns its allocation count and bytes.
	allocs := func(steps int) (count, bytes float64) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		if _, err := m.Generate(context.Background(), sd.Request{Prompt: "x", Steps: steps, Seed: 1, HasSeed: true, Scheduler: "dpmpp_2m"}); err != nil {
			b.Fatal(err)
		}
		runtime.ReadMemStats(&after)
		return float64(after.Mallocs - before.Mallocs), float64(after.TotalAlloc - before.TotalAlloc)
	}
	var perStep, bytesPerStep float64
	for b.Loop() {
		longN, longB := allocs(22)
		shortN, shortB := allocs(2)
		perStep, bytesPerStep = (longN-shortN)/20, (longB-shortB)/20
	}
	b.ReportMetric(perStep, "allocs/step")
	b.ReportMetric(bytesPerStep, "B/step")
}
