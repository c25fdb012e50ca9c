package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

func testRuntime(t *testing.T) *sd.Runtime {
	t.Helper()
	wd, _ := os.Getwd()
	lib, err := sd.FindLibrary("", sd.DefaultLibraryDirs("", wd))
	if err != nil {
		t.Skipf("no ONNX Runtime library (run make deps): %v", err)
	}
	rt, err := sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

// modelsDir holds two tiny models (different seeds), a broken folder and a
// folder that is not a model at all.
func modelsDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for name, seed := range map[string]uint64{"alpha": 1, "beta": 2} {
		if _, err := synth.Write(context.Background(), filepath.Join(dir, name), synth.Options{Preset: "tiny", Seed: seed}, nil); err != nil {
			t.Fatal(err)
		}
	}
	broken := filepath.Join(dir, "broken")
	os.MkdirAll(filepath.Join(broken, "unet"), 0o755)
	os.WriteFile(filepath.Join(broken, "model_index.json"), []byte(`{}`), 0o644)
	os.MkdirAll(filepath.Join(dir, "notes"), 0o755)
	return dir
}

func TestRegistryRoutesAndReports(t *testing.T) {
	r, err := NewRegistry(RegistryOptions{Runtime: testRuntime(t), Dir: modelsDir(t), QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
		if m.NativeWidth != 64 || m.DefaultSteps != 4 {
			t.Errorf("%s: %+v", m.ID, m)
		}
	}
	if len(ids) != 2 || ids[0] != "alpha" || ids[1] != "beta" {
		t.Errorf("models %v, want [alpha beta]", ids)
	}
	if b := r.Broken(); len(b) != 1 || b[0].ID != "broken" || !errors.Is(b[0].Err, sd.ErrBadModel) {
		t.Errorf("broken = %+v", b)
	}
	if r.DefaultModel() != "alpha" {
		t.Errorf("default %q", r.DefaultModel())
	}
	if err := r.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}

	req := sd.Request{Prompt: "a cat", Steps: 2, Seed: 5, HasSeed: true}
	a, err := r.Generate(context.Background(), "alpha", req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Generate(context.Background(), "beta", req)
	if err != nil {
		t.Fatal(err)
	}
	if string(a.Images[0].Image.Pix) == string(b.Images[0].Image.Pix) {
		t.Error("two different models gave the same image")
	}
	if _, err := r.Generate(context.Background(), "gamma", req); !errors.Is(err, ErrModelNotFound) {
		t.Errorf("unknown model: %v", err)
	}
	var pe *sd.ParamError
	if _, err := r.Generate(context.Background(), "alpha", sd.Request{Steps: 999}); !errors.As(err, &pe) || pe.Param != "steps" {
		t.Errorf("bad steps: %v", err)
	}
}

func TestRegistryRefusesEmptyDir(t *testing.T) {
	if _, err := NewRegistry(RegistryOptions{Runtime: testRuntime(t), Dir: t.TempDir()}); err == nil {
		t.Error("an empty models dir was accepted")
	}
	if _, err := NewRegistry(RegistryOptions{Runtime: testRuntime(t), Dir: modelsDir(t), DefaultModel: "nope"}); err == nil {
		t.Error("an unknown default model was accepted")
	}
}
