package models

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/sdgate/sdgate/sd/spec"
)

// fakePipeline drives the registry without ONNX Runtime (and without cgo):
// it records what the registry asks of it and answers one blank image.
type fakePipeline struct {
	dir string
	mu  sync.Mutex
	log *[]string // shared by every pipeline of one test, in call order
	on  bool
}

func (p *fakePipeline) note(what string) {
	*p.log = append(*p.log, what+" "+filepath.Base(p.dir))
}

func (p *fakePipeline) Spec() spec.Model {
	return spec.Model{NativeWidth: 64, NativeHeight: 64, DefaultSteps: 2, Scheduler: "EulerDiscreteScheduler"}
}
func (p *fakePipeline) Dir() string { return p.dir }
func (p *fakePipeline) Validate(req spec.Request) error {
	if req.Steps > spec.MaxSteps {
		return &spec.ParamError{Param: "steps", Message: "too many"}
	}
	return nil
}
func (p *fakePipeline) Load(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.on = true
	p.note("load")
	return nil
}
func (p *fakePipeline) Loaded() bool { p.mu.Lock(); defer p.mu.Unlock(); return p.on }
func (p *fakePipeline) Generate(_ context.Context, req spec.Request) (spec.Result, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.on {
		return spec.Result{}, spec.ErrNotLoaded
	}
	p.note("generate")
	return spec.Result{Images: []spec.Image{{Image: image.NewRGBA(image.Rect(0, 0, 64, 64)), Seed: req.Seed}}}, nil
}
func (p *fakePipeline) Tokens(text string) int { return len(text) }
func (p *fakePipeline) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.on {
		p.note("close")
	}
	p.on = false
	return nil
}

// TestRegistryDrivesAnyPipeline: the registry's loading, resident limit,
// validation and broken-folder reporting work through the Pipeline seam
// alone, so they run where cgo and ONNX Runtime are not available.
func TestRegistryDrivesAnyPipeline(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"a", "b", "bad"} {
		os.MkdirAll(filepath.Join(dir, id), 0o755)
		os.WriteFile(filepath.Join(dir, id, "model_index.json"), []byte(`{}`), 0o644)
	}
	var calls []string
	open := func(d string) (*fakePipeline, error) {
		if filepath.Base(d) == "bad" {
			return nil, fmt.Errorf("%w: %s: no unet", spec.ErrBadModel, d)
		}
		return &fakePipeline{dir: d, log: &calls}, nil
	}
	r, err := NewRegistry(RegistryOptions{Open: OpenWith(open), Dir: dir, KeepAlive: -1, MaxResident: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if b := r.Broken(); len(b) != 1 || b[0].ID != "bad" || !errors.Is(b[0].Err, spec.ErrBadModel) {
		t.Fatalf("broken: %+v", b)
	}
	for _, id := range []string{"a", "b", "b"} {
		if res, err := r.Generate(context.Background(), id, spec.Request{Seed: 7, HasSeed: true}); err != nil || res.Images[0].Seed != 7 {
			t.Fatalf("generate %s: %v %+v", id, err, res)
		}
	}
	want := []string{"load a", "generate a", "close a", "load b", "generate b", "generate b"}
	if fmt.Sprint(calls) != fmt.Sprint(want) {
		t.Fatalf("calls %v, want %v", calls, want)
	}
	var pe *spec.ParamError
	if _, err := r.Generate(context.Background(), "a", spec.Request{Steps: 999}); !errors.As(err, &pe) || pe.Param != "steps" {
		t.Fatalf("invalid request: %v", err)
	}
	if n := r.CountTokens("four"); n != 4 {
		t.Fatalf("CountTokens via the default pipeline: %d", n)
	}
}
