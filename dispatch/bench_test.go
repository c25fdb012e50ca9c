package dispatch

import (
	"context"
	"fmt"
	"image"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// benchRequest is one tiny-model image; the seed varies per request so no
// layer could reuse a previous answer.
func benchRequest(i int64) spec.Request {
	return spec.Request{Prompt: "a lighthouse at dusk", Seed: uint64(i), HasSeed: true, Steps: 4}
}

// BenchmarkInProcess is the single-box path: the registry's queue and the
// pipeline, nothing else. Compare with BenchmarkGateway/workers=1 serial.
func BenchmarkInProcess(b *testing.B) {
	reg := registry(b, tinyModels(b))
	ctx := context.Background()
	reg.Generate(ctx, "tiny", benchRequest(0)) // load the model
	b.ResetTimer()
	for i := range b.N {
		if _, err := reg.Generate(ctx, "tiny", benchRequest(int64(i))); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
}

// BenchmarkGateway sends requests through a gateway to 1, 2 or 4 workers
// (each with its own registry, as one per GPU), with twice as many
// concurrent clients as workers. serial: one client at a time, to read the
// per-request overhead against BenchmarkInProcess.
func BenchmarkGateway(b *testing.B) {
	dir := tinyModels(b)
	for _, tc := range []struct {
		workers, clients int
		name             string
	}{{1, 1, "serial"}, {1, 2, "workers=1"}, {2, 4, "workers=2"}, {4, 8, "workers=4"}} {
		b.Run(tc.name, func(b *testing.B) {
			n := startNATS(b)
			for w := range tc.workers {
				reg := registry(b, dir)
				reg.Generate(context.Background(), "tiny", benchRequest(0))
				startWorker(b, n, reg, WorkerOptions{ID: fmt.Sprintf("w%d", w), PollWait: time.Second})
			}
			g := startGateway(b, n, GatewayOptions{})
			waitFor(b, "every advert", func() bool {
				g.mu.Lock()
				defer g.mu.Unlock()
				return len(g.workers) == tc.workers
			})
			if _, err := g.Generate(context.Background(), "tiny", benchRequest(0)); err != nil {
				b.Fatal(err)
			}
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for range tc.clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						if _, err := g.Generate(context.Background(), "tiny", benchRequest(i)); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "images/s")
		})
	}
}

// replayRunner answers every job at once with a stored result: what is
// left of a request's time is the transport (publish, pull, object store,
// PNG encode and decode), the gateway's overhead over an in-process call.
type replayRunner struct {
	res spec.Result
}

func (r replayRunner) Models() []models.Info {
	return []models.Info{{ID: "replay", NativeWidth: r.res.Width}}
}
func (r replayRunner) Loaded(string) bool  { return true }
func (r replayRunner) Stats() models.Stats { return models.Stats{} }
func (r replayRunner) Generate(ctx context.Context, _ string, req spec.Request) (spec.Result, error) {
	return r.res, ctx.Err()
}

// noisyResult is n size x size images of pseudo-random pixels, which PNG
// cannot shrink much: 512x512 x 4 is a ~3 MB result, as real photos are.
func noisyResult(size, n int) spec.Result {
	res := spec.Result{Width: size, Height: size, Steps: 4, StepsRun: 4}
	x := uint32(1)
	for i := range n {
		img := image.NewRGBA(image.Rect(0, 0, size, size))
		for p := range img.Pix {
			x ^= x << 13
			x ^= x >> 17
			x ^= x << 5
			img.Pix[p] = byte(x)
			if p%4 == 3 {
				img.Pix[p] = 255
			}
		}
		res.Images = append(res.Images, spec.Image{Image: img, Seed: uint64(i)})
	}
	return res
}

func BenchmarkTransportOverhead(b *testing.B) {
	for _, tc := range []struct{ size, n int }{{64, 1}, {512, 4}} {
		b.Run(fmt.Sprintf("%dx%dx%d", tc.size, tc.size, tc.n), func(b *testing.B) {
			res := noisyResult(tc.size, tc.n)
			blob, _ := encodeResult(testJob, "w", res, nil)
			n := startNATS(b)
			startWorker(b, n, replayRunner{res}, WorkerOptions{ID: "replay"})
			g := startGateway(b, n, GatewayOptions{})
			waitFor(b, "the advert", served(g, "replay"))
			b.ResetTimer()
			for i := range b.N {
				if _, err := g.Generate(context.Background(), "replay", benchRequest(int64(i))); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(blob))/1e6, "MB/result")
		})
	}
}
