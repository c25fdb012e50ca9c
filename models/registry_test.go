package models

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd/spec"
)

// modelsDir holds two tiny models (different seeds), a broken folder and a
// folder that is not a model at all.
func modelsDir(t *testing.T) string { return benchModels(t) }

func benchModels(t testing.TB) string {
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
	r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: modelsDir(t), QueueSize: 4})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())

	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
		if m.NativeWidth != 64 || m.DefaultSteps != 4 || m.Family != spec.FamilySD1 || len(m.Buckets) != 7 {
			t.Errorf("%s: %+v", m.ID, m)
		}
	}
	if len(ids) != 2 || ids[0] != "alpha" || ids[1] != "beta" {
		t.Errorf("models %v, want [alpha beta]", ids)
	}
	if b := r.Broken(); len(b) != 1 || b[0].ID != "broken" || !errors.Is(b[0].Err, spec.ErrBadModel) {
		t.Errorf("broken = %+v", b)
	}
	if r.DefaultModel() != "alpha" {
		t.Errorf("default %q", r.DefaultModel())
	}
	if err := r.Ready(context.Background()); err != nil {
		t.Errorf("Ready: %v", err)
	}

	req := spec.Request{Prompt: "a cat", Steps: 2, Seed: 5, HasSeed: true}
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
	var pe *spec.ParamError
	if _, err := r.Generate(context.Background(), "alpha", spec.Request{Steps: 999}); !errors.As(err, &pe) || pe.Param != "steps" {
		t.Errorf("bad steps: %v", err)
	}
}

func TestRegistryRefusesEmptyDir(t *testing.T) {
	if _, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: t.TempDir()}); err == nil {
		t.Error("an empty models dir was accepted")
	}
	if _, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: modelsDir(t), DefaultModel: "nope"}); err == nil {
		t.Error("an unknown default model was accepted")
	}
}

func TestKeepAliveUnloadsAndNextRequestReloads(t *testing.T) {
	r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: modelsDir(t), KeepAlive: 150 * time.Millisecond, MaxResident: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	req := spec.Request{Prompt: "x", Steps: 1}
	res, err := r.Generate(context.Background(), "alpha", req)
	if err != nil {
		t.Fatal(err)
	}
	if res.ModelLoad <= 0 || !r.Loaded("alpha") {
		t.Fatalf("first request: load %v, loaded %v", res.ModelLoad, r.Loaded("alpha"))
	}
	if res, _ := r.Generate(context.Background(), "alpha", req); res.ModelLoad != 0 {
		t.Errorf("warm request paid a load of %v", res.ModelLoad)
	}
	deadline := time.Now().Add(5 * time.Second)
	for (r.Loaded("alpha") || r.Stats().Unloads == 0) && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Loaded("alpha") {
		t.Fatal("alpha still loaded past its keep-alive")
	}
	if s := r.Stats(); s.Loads != 1 || s.Unloads != 1 || s.Resident != 0 {
		t.Errorf("stats %+v", s)
	}
	if res, err := r.Generate(context.Background(), "alpha", req); err != nil || res.ModelLoad <= 0 {
		t.Errorf("reload: %v, load %v", err, res.ModelLoad)
	}
}

func TestResidentLimitUnloadsLeastRecentlyUsed(t *testing.T) {
	dir := modelsDir(t)
	if _, err := synth.Write(context.Background(), filepath.Join(dir, "gamma"), synth.Options{Preset: "tiny", Seed: 3}, nil); err != nil {
		t.Fatal(err)
	}
	r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: dir, KeepAlive: -1, MaxResident: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	req := spec.Request{Prompt: "x", Steps: 1}
	for _, id := range []string{"alpha", "beta", "alpha", "gamma"} {
		if _, err := r.Generate(context.Background(), id, req); err != nil {
			t.Fatal(err)
		}
	}
	// beta was used least recently when gamma needed room.
	if !r.Loaded("alpha") || r.Loaded("beta") || !r.Loaded("gamma") {
		t.Errorf("loaded: alpha %v beta %v gamma %v", r.Loaded("alpha"), r.Loaded("beta"), r.Loaded("gamma"))
	}
	if s := r.Stats(); s.Resident != 2 || s.Unloads != 1 {
		t.Errorf("stats %+v", s)
	}
}

func TestRescanAndFolderSettings(t *testing.T) {
	dir := modelsDir(t)
	os.WriteFile(filepath.Join(dir, "alpha", "sdgate.json"), []byte(`{"native_width":64,"native_height":64,"default_steps":4,
		"display_name":"Alpha","keep_alive":"never","aliases":["dall-e-3"],"quality_steps":{"hd":8},"default_scheduler":"euler_a"}`), 0o644)
	r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	a := r.Models()[0]
	if a.DisplayName != "Alpha" || len(a.Aliases) != 1 || a.Aliases[0] != "dall-e-3" || a.QualitySteps["hd"] != 8 || a.Scheduler != "euler_a" {
		t.Errorf("alpha info %+v", a)
	}
	if res, err := r.Generate(context.Background(), "alpha", spec.Request{Prompt: "x", Steps: 1}); err != nil || res.Scheduler != "euler_a" {
		t.Errorf("default scheduler: %v %q", err, res.Scheduler)
	}
	// A new model appears, one breaks: rescan serves the new one and
	// reports the broken one without dropping the rest.
	if _, err := synth.Write(context.Background(), filepath.Join(dir, "delta"), synth.Options{Preset: "tiny", Seed: 4}, nil); err != nil {
		t.Fatal(err)
	}
	os.Remove(filepath.Join(dir, "beta", "unet", "model.onnx"))
	if err := r.Rescan(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
	}
	if len(ids) != 2 || ids[0] != "alpha" || ids[1] != "delta" {
		t.Errorf("after rescan: %v", ids)
	}
	if b := r.Broken(); len(b) != 2 {
		t.Errorf("broken after rescan: %+v", b)
	}
	if !r.Loaded("alpha") {
		t.Error("rescan unloaded an unchanged model")
	}
	if _, err := r.Generate(context.Background(), "beta", spec.Request{Prompt: "x"}); !errors.Is(err, ErrModelNotFound) {
		t.Errorf("broken model still served: %v", err)
	}
}
