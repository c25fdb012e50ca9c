package dispatch

import (
	"bytes"
	"context"
	"errors"
	"image"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// samePixels fails unless two results carry identical images and seeds.
func samePixels(t *testing.T, got, want spec.Result) {
	t.Helper()
	if len(got.Images) != len(want.Images) {
		t.Fatalf("%d images, want %d", len(got.Images), len(want.Images))
	}
	for i := range want.Images {
		g, w := got.Images[i], want.Images[i]
		if g.Seed != w.Seed || g.Image.Rect != w.Image.Rect || !bytes.Equal(g.Image.Pix, w.Image.Pix) {
			t.Errorf("image %d differs (seed %d vs %d, %v vs %v)", i, g.Seed, w.Seed, g.Image.Rect, w.Image.Rect)
		}
	}
}

func TestGenerateThroughWorkerMatchesInProcess(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	startWorker(t, n, registry(t, dir), WorkerOptions{ID: "w1"})
	g := startGateway(t, n, GatewayOptions{Names: models.IdentityConfig{DefaultAliases: []string{"dall-e-3"}}})
	waitFor(t, "the worker's advert", served(g, "tiny"))

	if info, ok := g.Resolve("dall-e-3"); !ok || info.ID != "tiny" || info.NativeWidth != 64 {
		t.Fatalf("Resolve(dall-e-3) = %+v, %v", info, ok)
	}
	if err := g.Ready(context.Background()); err != nil {
		t.Fatalf("Ready: %v", err)
	}
	var steps atomic.Int32
	req := spec.Request{Prompt: "a lighthouse", Seed: 42, HasSeed: true, N: 2,
		Progress: func(step, total int) { steps.Add(1) }}
	got, err := g.Generate(context.Background(), "tiny", req)
	if err != nil {
		t.Fatal(err)
	}
	req.Progress = nil
	want, err := registry(t, dir).Generate(context.Background(), "tiny", req)
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, got, want)
	if got.Prompt != want.Prompt || got.Steps != want.Steps || got.StepsRun != want.StepsRun || got.Width != 64 {
		t.Errorf("metadata %+v, want %+v", got, want)
	}
	if steps.Load() == 0 {
		t.Error("no progress reached the gateway")
	}
	// The next heartbeat advertises the model as resident.
	waitFor(t, "the resident model in the stats", func() bool { return g.Stats().Resident == 1 })
}

func TestEditInputsCrossTheWire(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	startWorker(t, n, registry(t, dir), WorkerOptions{ID: "w1"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the worker's advert", served(g, "tiny"))

	init := image.NewRGBA(image.Rect(0, 0, 64, 64))
	mask := image.NewGray(image.Rect(0, 0, 64, 64))
	for i := range init.Pix {
		init.Pix[i] = byte(i * 7)
	}
	for i := range mask.Pix {
		if i%64 > 32 {
			mask.Pix[i] = 255
		}
	}
	req := spec.Request{Prompt: "repaint", Seed: 9, HasSeed: true, Width: 64, Height: 64, InitImage: init, Mask: mask}
	got, err := g.Generate(context.Background(), "tiny", req)
	if err != nil {
		t.Fatal(err)
	}
	want, err := registry(t, dir).Generate(context.Background(), "tiny", req)
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, got, want)
}

func TestWorkerErrorsKeepTheirMeaning(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	startWorker(t, n, registry(t, dir), WorkerOptions{ID: "w1"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the worker's advert", served(g, "tiny"))

	_, err := g.Generate(context.Background(), "tiny", spec.Request{Prompt: "x", Width: 63, Height: 64})
	var pe *spec.ParamError
	if !errors.As(err, &pe) || pe.Param != "size" {
		t.Fatalf("err = %v, want a ParamError on size", err)
	}
}

func TestNoWorkerIsRefusedAtOnce(t *testing.T) {
	n := startNATS(t)
	g := startGateway(t, n, GatewayOptions{})
	start := time.Now()
	_, err := g.Generate(context.Background(), "tiny", spec.Request{Prompt: "x"})
	if !errors.Is(err, models.ErrNoWorker) {
		t.Fatalf("err = %v, want ErrNoWorker", err)
	}
	if time.Since(start) > time.Second {
		t.Errorf("took %v", time.Since(start))
	}
	if err := g.Ready(context.Background()); !errors.Is(err, ErrNoWorker) {
		t.Errorf("Ready = %v, want ErrNoWorker", err)
	}
}

func TestWithdrawnWorkerIsForgotten(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	_, _, stop := startWorker(t, n, registry(t, dir), WorkerOptions{ID: "w1"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the worker's advert", served(g, "tiny"))
	stop()
	waitFor(t, "the advert to go", func() bool { return len(g.Models()) == 0 })
	if _, err := g.Generate(context.Background(), "tiny", spec.Request{Prompt: "x"}); !errors.Is(err, ErrNoWorker) {
		t.Fatalf("err = %v, want ErrNoWorker", err)
	}
}

// A result several times NATS's 1 MB max_payload crosses intact: the
// object store chunks it.
func TestMultiMegabyteResultCrossesIntact(t *testing.T) {
	n := startNATS(t)
	res := noisyResult(512, 4)
	blob, err := encodeResult(testJob, "w", res, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(blob) < 3<<20 {
		t.Fatalf("result is only %d bytes; the test needs several MB", len(blob))
	}
	startWorker(t, n, replayRunner{res}, WorkerOptions{ID: "replay"})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "the advert", served(g, "replay"))
	got, err := g.Generate(context.Background(), "replay", spec.Request{Prompt: "big", N: 4})
	if err != nil {
		t.Fatal(err)
	}
	samePixels(t, got, res)
}

// Resident first: with one worker that has the model loaded and one that
// would have to load it, sequential jobs all go to the warm one.
func TestWarmWorkerTakesJobsFirst(t *testing.T) {
	dir := tinyModels(t)
	n := startNATS(t)
	warmReg := registry(t, dir)
	if _, err := warmReg.Generate(context.Background(), "tiny", spec.Request{Prompt: "load", Steps: 1}); err != nil {
		t.Fatal(err)
	}
	warm, _, _ := startWorker(t, n, warmReg, WorkerOptions{ID: "warm"})
	cold, _, _ := startWorker(t, n, registry(t, dir), WorkerOptions{ID: "cold", ColdGrace: 5 * time.Second})
	g := startGateway(t, n, GatewayOptions{})
	waitFor(t, "both adverts", func() bool { return g.liveWorkers("tiny") == 2 })
	for i := range 3 {
		if _, err := g.Generate(context.Background(), "tiny", spec.Request{Prompt: "p", Steps: 2, Seed: uint64(i), HasSeed: true}); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the jobs to be counted", func() bool { return warm.Stats().Jobs+cold.Stats().Jobs == 3 })
	if w, c := warm.Stats().Jobs, cold.Stats().Jobs; w != 3 || c != 0 {
		t.Errorf("warm ran %d, cold ran %d; want 3 and 0", w, c)
	}
}
