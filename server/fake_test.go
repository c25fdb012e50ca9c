package server

import (
	"context"
	"fmt"
	"image"
	"image/color"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// fakeGenerator stands in for the models registry: it validates like the
// pipeline does, optionally waits (honouring ctx) through a real
// models.Queue, and draws a picture determined by the seed.
type fakeGenerator struct {
	models []models.Info
	queue  *models.Queue // nil: no queue

	delay     atomic.Int64 // nanoseconds per request, while holding the worker
	calls     atomic.Int32 // Generate calls
	runs      atomic.Int32 // jobs that reached the worker
	cancelled atomic.Int32 // jobs whose ctx ended while they ran
	genNanos  atomic.Int64 // time spent inside Generate
	mu        sync.Mutex
	last      spec.Request
	err       error // returned instead of generating, when set
	ready     error // returned by Ready
	// names configure Resolve as the registry's flags do; the OpenAI names
	// always fall back to the default.
	names      models.IdentityConfig
	queueDepth func() int // nil: the queue's depth, or 0 without one
	stats      models.Stats
}

// Interface guard.
var _ Backend = (*fakeGenerator)(nil)

func newFakeGenerator() *fakeGenerator {
	return &fakeGenerator{models: []models.Info{
		{ID: "sd-tiny", Created: time.Unix(1700000000, 0), NativeWidth: 64, NativeHeight: 64,
			DefaultSteps: 20, DefaultGuidance: 7.5, Scheduler: "euler"},
		{ID: "sd-turbo", Created: time.Unix(1700000100, 0), NativeWidth: 128, NativeHeight: 96,
			DefaultSteps: 4, DefaultGuidance: 0, Scheduler: "euler-a"},
	}}
}

func (f *fakeGenerator) Models() []models.Info { return f.models }

func (f *fakeGenerator) identity() models.Identity {
	cfg := f.names
	cfg.DefaultAliases = AliasNames()
	return models.NewIdentity(f.models, cfg)
}

func (f *fakeGenerator) Resolve(name string) (models.Info, bool) { return f.identity().Resolve(name) }
func (f *fakeGenerator) Aliases() map[string]string              { return f.identity().Aliases() }
func (f *fakeGenerator) Default() models.DefaultState            { return f.identity().Default() }
func (f *fakeGenerator) CountTokens(text string) int             { return estimateCLIPTokens(text) }
func (f *fakeGenerator) Stats() models.Stats                     { return f.stats }

func (f *fakeGenerator) QueueDepth() int {
	switch {
	case f.queueDepth != nil:
		return f.queueDepth()
	case f.queue != nil:
		return f.queue.Depth()
	}
	return 0
}

func (f *fakeGenerator) Ready(context.Context) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

// fail makes Generate return err (after validation); nil restores it.
func (f *fakeGenerator) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeGenerator) setReady(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.ready = err
}

func (f *fakeGenerator) lastRequest() spec.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.last
}

// fakeSchedulers are the scheduler names the fake pipeline knows.
var fakeSchedulers = []string{"", "euler", "euler-a", "ddim", "dpm++"}

func (f *fakeGenerator) setDelay(d time.Duration) { f.delay.Store(int64(d)) }

func (f *fakeGenerator) Generate(ctx context.Context, modelID string, req spec.Request) (spec.Result, error) {
	f.calls.Add(1)
	defer func(start time.Time) { f.genNanos.Add(int64(time.Since(start))) }(time.Now())
	f.mu.Lock()
	f.last = req
	failure := f.err
	f.mu.Unlock()
	var info *models.Info
	for i := range f.models {
		if f.models[i].ID == modelID {
			info = &f.models[i]
		}
	}
	if info == nil {
		return spec.Result{}, fmt.Errorf("load %q: %w", modelID, models.ErrModelNotFound)
	}
	if err := fakeValidate(req); err != nil {
		return spec.Result{}, err
	}
	if failure != nil {
		return spec.Result{}, failure
	}
	w, h := req.Width, req.Height
	if w == 0 {
		w, h = info.NativeWidth, info.NativeHeight
	}
	n := max(req.N, 1)
	steps := req.Steps
	if steps == 0 {
		steps = info.DefaultSteps
	}
	start := time.Now()
	var images []spec.Image
	work := func(ctx context.Context) error {
		f.runs.Add(1)
		if req.Partial != nil {
			for k, step := range spec.PartialSteps(req.PartialImages, steps) {
				img := spec.Image{Image: drawSeed(w, h, req.Seed+1000+uint64(k)), Seed: req.Seed}
				req.Partial(spec.Partial{Index: k, Step: step, Total: steps, Image: img})
			}
		}
		if d := time.Duration(f.delay.Load()); d > 0 {
			select {
			case <-time.After(d):
			case <-ctx.Done():
				f.cancelled.Add(1)
				return ctx.Err()
			}
		}
		for i := range n {
			images = append(images, spec.Image{Image: drawSeed(w, h, req.Seed+uint64(i)), Seed: req.Seed + uint64(i)})
		}
		return nil
	}
	var err error
	if f.queue != nil {
		err = f.queue.Do(ctx, work)
	} else {
		err = work(ctx)
	}
	if err != nil {
		return spec.Result{Total: time.Since(start)}, err
	}
	return spec.Result{
		Images: images, Prompt: truncateWords(req.Prompt, fakePromptWords), Truncated: len(strings.Fields(req.Prompt)) > fakePromptWords,
		Width: w, Height: h, Steps: steps, Guidance: req.Guidance, Scheduler: req.Scheduler,
		Total: max(time.Since(start), time.Microsecond),
	}, nil
}

// fakeValidate mirrors the pipeline's own checks that the API layer leaves
// to it.
func fakeValidate(req spec.Request) error {
	switch {
	case req.Width%8 != 0 || req.Height%8 != 0 || req.Width > 2048 || req.Height > 2048:
		return &spec.ParamError{Param: "size", Message: fmt.Sprintf("%dx%d is not supported by this model", req.Width, req.Height)}
	case req.Steps < 0 || req.Steps > 150:
		return &spec.ParamError{Param: "steps", Message: "must be 1..150"}
	case req.HasGuidance && req.Guidance > 30:
		return &spec.ParamError{Param: "guidance_scale", Message: "must be at most 30"}
	}
	for _, s := range fakeSchedulers {
		if s == req.Scheduler {
			return nil
		}
	}
	return &spec.ParamError{Param: "scheduler", Message: fmt.Sprintf("unknown scheduler %q", req.Scheduler)}
}

// fakePromptWords is the fake pipeline's prompt limit: a word a token, as
// many as the real pipeline's windows hold.
const fakePromptWords = spec.MaxPromptChunks * 75

func truncateWords(s string, n int) string {
	words := strings.Fields(s)
	if len(words) > n {
		words = words[:n]
	}
	return strings.Join(words, " ")
}

// drawSeed paints a pattern that depends on every bit of the seed.
func drawSeed(w, h int, seed uint64) *image.RGBA {
	x := seed
	next := func() uint64 { // splitmix64
		x += 0x9e3779b97f4a7c15
		z := x
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
		z = (z ^ (z >> 27)) * 0x94d049bb133111eb
		return z ^ (z >> 31)
	}
	a, b, period := next(), next(), int(next()%13)+3
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for py := range h {
		for px := range w {
			c := a
			if (px/period+py/period)%2 == 0 {
				c = b
			}
			img.SetRGBA(px, py, color.RGBA{uint8(c), uint8(c >> 8), uint8(c>>16) ^ uint8(px*255/max(w-1, 1)), 255})
		}
	}
	return img
}

// startServer serves gen on a real loopback listener. The contract tests
// take any Backend, so they can run against the real pipeline too.
func startServer(t testing.TB, gen Backend, opts ...func(*Options)) *httptest.Server {
	t.Helper()
	var o Options
	for _, apply := range opts {
		apply(&o)
	}
	s, err := New(gen, o)
	if err != nil {
		t.Fatalf("server.New: %v", err)
	}
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		ts.Close()
		s.Close()
	})
	return ts
}
