package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/sd/spec"
)

// TestLoRAVariantMatchesBakedImport: a request naming a LoRA of the
// folder's loras/ (merged into the ONNX graphs as the variant loads) and a
// LoRA alias give exactly the image of the folder `import --lora` baked
// with the same LoRA and scale; the base model's image differs.
func TestLoRAVariantMatchesBakedImport(t *testing.T) {
	root := t.TempDir()
	ckpt := filepath.Join(root, "tiny.safetensors")
	modelsDir, baked := filepath.Join(root, "models"), filepath.Join(root, "baked", "tiny")
	base := filepath.Join(modelsDir, "tiny")
	loraFile := filepath.Join(root, "style.safetensors")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"synth", "--out", base, "--seed", "5", "--checkpoint", ckpt, "--lora", loraFile, "--lora-rank", "3"},
		mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr.String())
	}
	if err := run(context.Background(), []string{"import", ckpt, "--fp32", "--attention", "plain", "--out", baked, "--lora", loraFile + ":0.75"},
		mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	if err := os.MkdirAll(filepath.Join(base, "loras"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(loraFile, filepath.Join(base, "loras", "style.safetensors")); err != nil {
		t.Fatal(err)
	}
	// The same model exported with optimum's naming: MatMul weights are
	// onnx::MatMul_N, only node names tell the layer.
	anon := filepath.Join(modelsDir, "anon")
	if _, err := synth.Write(context.Background(), anon, synth.Options{Preset: "tiny", Seed: 5, AnonymousMatMulWeights: true}, nil); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(anon, "loras"), 0o755)
	if data, err := os.ReadFile(filepath.Join(base, "loras", "style.safetensors")); err != nil ||
		os.WriteFile(filepath.Join(anon, "loras", "style.safetensors"), data, 0o644) != nil {
		t.Fatal(err)
	}
	// synth's sdgate.json plus a LoRA alias.
	cfgPath := filepath.Join(base, "sdgate.json")
	var cfg map[string]any
	if data, err := os.ReadFile(cfgPath); err != nil || json.Unmarshal(data, &cfg) != nil {
		t.Fatalf("read %s: %v", cfgPath, err)
	}
	cfg["aliases"] = map[string]any{"styled": map[string]any{"loras": []any{map[string]any{"name": "style", "scale": 0.75}}}}
	data, _ := json.Marshal(cfg)
	if err := os.WriteFile(cfgPath, data, 0o644); err != nil {
		t.Fatal(err)
	}

	wd, _ := os.Getwd()
	rt, err := sd.NewRuntime(sd.RuntimeOptions{Device: "cpu", LibraryDirs: sd.DefaultLibraryDirs("", wd)})
	if err != nil {
		t.Skipf("ONNX Runtime not available (run make deps): %v", err)
	}
	defer rt.Close()
	logger := slog.New(slog.DiscardHandler)
	reg, err := models.NewRegistry(models.RegistryOptions{
		Open: models.OpenWith(rt.OpenPipeline), OpenVariant: loraVariantOpener(rt, true, logger),
		Dir: modelsDir, KeepAlive: -1, MaxResident: 2, Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer reg.Close(context.Background())
	if b := reg.Broken(); len(b) > 0 {
		t.Fatalf("broken: %+v", b)
	}

	req := spec.Request{Prompt: "a lighthouse at dusk", Seed: 3, HasSeed: true, Steps: 2}
	gen := func(id string, loras ...spec.LoRA) []byte {
		t.Helper()
		r := req
		r.LoRAs = loras
		res, err := reg.Generate(context.Background(), id, r)
		if err != nil {
			t.Fatalf("%s %v: %v", id, loras, err)
		}
		return res.Images[0].Image.Pix
	}
	m, err := sd.Load(context.Background(), rt, baked, sd.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	want := res.Images[0].Image.Pix

	if got := gen("tiny", spec.LoRA{Name: "style", Scale: 0.75}); !bytes.Equal(got, want) {
		t.Error("request LoRA: image differs from the baked import's")
	}
	if got := gen("anon", spec.LoRA{Name: "style", Scale: 0.75}); !bytes.Equal(got, want) {
		t.Error("request LoRA on optimum-named weights: image differs from the baked import's")
	}
	if got := gen("styled"); !bytes.Equal(got, want) {
		t.Error("LoRA alias: image differs from the baked import's")
	}
	if got := gen("tiny"); bytes.Equal(got, want) {
		t.Error("the base model gives the LoRA's image")
	}
	if got := gen("tiny", spec.LoRA{Name: "style", Scale: 0}); !bytes.Equal(got, gen("tiny")) {
		t.Error("scale 0 differs from the base model")
	}

	// generate --lora merges the same way.
	png := func(model string, extra ...string) []byte {
		t.Helper()
		prefix := filepath.Join(root, fmt.Sprintf("gen-%d", len(extra)))
		args := append([]string{"generate", "--model", model, "--prompt", "a lighthouse", "--seed", "3", "--steps", "2", "--out", prefix}, extra...)
		var o, e bytes.Buffer
		if err := run(context.Background(), args, mapEnv(nil), &o, &e); err != nil {
			t.Fatalf("generate: %v\n%s", err, e.String())
		}
		data, err := os.ReadFile(prefix + ".png")
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if !bytes.Equal(png(base, "--lora", filepath.Join(base, "loras", "style.safetensors")+":0.75"), png(baked)) {
		t.Error("generate --lora: image differs from the baked import's")
	}

	// A LoRA replaced under its name is refused until a rescan gives it
	// its new digest (and cache key).
	path := filepath.Join(anon, "loras", "style.safetensors")
	changed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	changed[len(changed)-4] ^= 1 // the low mantissa bit of the last value
	if err := os.WriteFile(path, changed, 0o644); err != nil {
		t.Fatal(err)
	}
	later := time.Now().Add(time.Minute) // a rescan notices by size and time
	os.Chtimes(path, later, later)
	r := req
	r.LoRAs = []spec.LoRA{{Name: "style", Scale: 0.5}}
	if _, err := reg.Generate(context.Background(), "anon", r); !errors.Is(err, errLoRAChanged) {
		t.Errorf("changed LoRA file: %v, want errLoRAChanged", err)
	}
	if err := reg.Rescan(); err != nil {
		t.Fatal(err)
	}
	if _, err := reg.Generate(context.Background(), "anon", r); err != nil {
		t.Errorf("after a rescan: %v", err)
	}
}

// TestSynthSDXLLoRA: synth --lora on an sdxl preset writes kohya's SDXL
// names (LDM UNet paths, lora_te1_/lora_te2_), and generate --lora merges
// them into the folder strictly: every module matches, the image changes.
func TestSynthSDXLLoRA(t *testing.T) {
	root := t.TempDir()
	base, loraFile := filepath.Join(root, "xl"), filepath.Join(root, "xl-style.safetensors")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"synth", "--preset", "sdxl-tiny", "--out", base, "--seed", "5", "--lora", loraFile, "--lora-rank", "2"},
		mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr.String())
	}
	l, err := lora.Open(loraFile)
	if err != nil {
		t.Fatal(err)
	}
	nets := map[string]int{}
	for _, m := range l.Modules {
		nets[m.Net]++
		if m.Net == "unet" && !strings.HasPrefix(m.Key, "lora_unet_input_blocks_") && !strings.HasPrefix(m.Key, "lora_unet_middle_block_") &&
			!strings.HasPrefix(m.Key, "lora_unet_output_blocks_") {
			t.Errorf("UNet module %s: not an LDM name", m.Key)
		}
	}
	if l.Format != lora.FormatKohya || nets["unet"] == 0 || nets["text_encoder"] == 0 || nets["text_encoder_2"] == 0 {
		t.Fatalf("%s LoRA with modules per network %v", l.Format, nets)
	}
	png := func(extra ...string) []byte {
		t.Helper()
		prefix := filepath.Join(root, fmt.Sprintf("gen-%d", len(extra)))
		args := append([]string{"generate", "--model", base, "--prompt", "a lighthouse", "--seed", "3", "--steps", "2", "--out", prefix}, extra...)
		var o, e bytes.Buffer
		if err := run(context.Background(), args, mapEnv(nil), &o, &e); err != nil {
			if strings.Contains(err.Error(), "ONNX Runtime") {
				t.Skipf("ONNX Runtime not available (run make deps): %v", err)
			}
			t.Fatalf("generate: %v\n%s", err, e.String())
		}
		data, err := os.ReadFile(prefix + ".png")
		if err != nil {
			t.Fatal(err)
		}
		return data
	}
	if bytes.Equal(png(), png("--lora", loraFile+":0.8", "--lora-strict")) {
		t.Error("generate --lora on an SDXL folder: the image did not change")
	}
}
