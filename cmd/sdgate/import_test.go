package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// onnxDoc is the encoded doc_string field (6) of a ModelProto.
func onnxDoc(doc string) []byte { return append([]byte{0x32, byte(len(doc))}, doc...) }

// TestSynthCheckpointImport: synth --checkpoint, then import, gives the
// same folder (model.onnx differs only in its doc string) and, on ONNX
// Runtime, the same image bytes.
func TestSynthCheckpointImport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		synthArgs []string
		importArg []string
	}{
		{"fp32", nil, []string{"--fp32", "--attention", "plain"}},
		{"fp16 inpaint fused", []string{"--fp16", "--inpaint", "--attention", "fused"}, nil},
		{"sd2 v-prediction", []string{"--preset", "tiny-sd2", "--attention", "fused"}, []string{"--fp32"}},
		{"sdxl", []string{"--preset", "sdxl-tiny", "--attention", "fused"}, []string{"--fp32", "--family", "sdxl"}},
		{"sdxl fp16 inpaint", []string{"--preset", "sdxl-tiny", "--fp16", "--inpaint", "--attention", "plain"}, []string{"--attention", "plain"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			ckpt := filepath.Join(root, "tiny.safetensors")
			a, b := filepath.Join(root, "a", "tiny"), filepath.Join(root, "b", "tiny")
			var stdout, stderr bytes.Buffer
			args := append([]string{"synth", "--out", a, "--seed", "7", "--checkpoint", ckpt}, tc.synthArgs...)
			if err := run(context.Background(), args, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("synth: %v\n%s", err, stderr.String())
			}
			stdout.Reset()
			args = append([]string{"import", ckpt, "--out", b}, tc.importArg...)
			if err := run(context.Background(), args, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("import: %v\n%s", err, stderr.String())
			}
			for _, want := range []string{"every checkpoint tensor was used", "weights from tiny.safetensors", "MB/s"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("import output lacks %q:\n%s", want, stdout.String())
				}
			}
			preset := "tiny"
			files := []string{"text_encoder/model.onnx", "unet/model.onnx", "vae_decoder/model.onnx", "vae_encoder/model.onnx",
				"tokenizer/vocab.json", "tokenizer/merges.txt", "tokenizer/tokenizer_config.json", "tokenizer/special_tokens_map.json",
				"scheduler/scheduler_config.json", "model_index.json"}
			switch {
			case strings.Contains(tc.name, "sd2"):
				preset = "tiny-sd2"
			case strings.Contains(tc.name, "sdxl"):
				preset = "sdxl-tiny"
				files = append(files, "text_encoder_2/model.onnx", "tokenizer_2/vocab.json", "tokenizer_2/merges.txt",
					"tokenizer_2/tokenizer_config.json", "tokenizer_2/special_tokens_map.json", "unet/config.json", "vae_decoder/config.json")
			}
			synthDoc := onnxDoc("sdgate synth: preset " + preset + ", seed 7, random weights")
			importDoc := onnxDoc("sdgate import: tiny.safetensors")
			for _, name := range files {
				want, err := os.ReadFile(filepath.Join(a, name))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(b, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(bytes.Replace(got, importDoc, synthDoc, 1), want) {
					t.Errorf("%s differs", name)
				}
			}
			if strings.Contains(tc.name, "inpaint") {
				return // the image check needs the text-to-image pipeline
			}
			tinyModels(t) // skips without ONNX Runtime
			image := func(model, prefix string) []byte {
				var o, e bytes.Buffer
				err := run(context.Background(), []string{"generate", "--model", model, "--prompt", "a lighthouse", "--seed", "3",
					"--steps", "2", "--size", "64x64", "--out", prefix}, mapEnv(nil), &o, &e)
				if err != nil {
					t.Fatalf("generate: %v\n%s", err, e.String())
				}
				data, err := os.ReadFile(prefix + ".png")
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
			if !bytes.Equal(image(a, filepath.Join(root, "a")), image(b, filepath.Join(root, "b"))) {
				t.Error("the imported folder draws another image than synth's")
			}
		})
	}
}

func TestImportRefuses(t *testing.T) {
	dir := t.TempDir()
	pickle := filepath.Join(dir, "model.ckpt")
	if err := os.WriteFile(pickle, []byte{0x80, 0x02}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--out", filepath.Join(dir, "x")}, "give the checkpoint file"},
		{[]string{"import", pickle}, "--out is required"},
		{[]string{"import", pickle, "--out", filepath.Join(dir, "x")}, "executes arbitrary code"},
		{[]string{"import", pickle, "--out", filepath.Join(dir, "x"), "--fp16", "--fp32"}, "exclude each other"},
		{[]string{"import", pickle, "--out", filepath.Join(dir, "x"), "--attention", "flash"}, "want plain or fused"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, mapEnv(nil), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}

// mapWeights serves parameters from a map (net/name -> values).
type mapWeights map[string][]float32

func (m mapWeights) Check(net, name string, shape []int64) error {
	if _, ok := m[net+"/"+name]; !ok {
		return fmt.Errorf("no %s/%s", net, name)
	}
	return nil
}

func (m mapWeights) Float32(net, name string, shape []int64) ([]float32, error) {
	return slices.Clone(m[net+"/"+name]), nil
}

// TestImportBakesLoRA: import --lora gives the folder of synth's weights
// merged by lora.Merge (tested exact on its own), and another image.
// TestImportBakesLoRA: `import --lora` bakes a kohya LoRA into the folder
// exactly as lora.Merge merges it into synth's weights, for SD (diffusers
// UNet names) and SDXL (LDM UNet names, two text encoders).
func TestImportBakesLoRA(t *testing.T) {
	for _, preset := range []string{"tiny", "sdxl-tiny"} {
		t.Run(preset, func(t *testing.T) { t.Parallel(); importBakesLoRA(t, preset) })
	}
}

func importBakesLoRA(t *testing.T, preset string) {
	root := t.TempDir()
	ckpt, loraFile := filepath.Join(root, "tiny.safetensors"), filepath.Join(root, "style.safetensors")
	base, merged := filepath.Join(root, "base", "tiny"), filepath.Join(root, "merged", "tiny")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"synth", "--preset", preset, "--out", base, "--seed", "5", "--checkpoint", ckpt, "--lora", loraFile, "--lora-rank", "3"},
		mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "rank 3") {
		t.Errorf("synth output: %s", stdout.String())
	}
	stdout.Reset()
	if err := run(context.Background(), []string{"import", ckpt, "--fp32", "--attention", "plain", "--out", merged, "--lora", loraFile + ":0.75"},
		mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "modules merged") {
		t.Errorf("import output: %s", stdout.String())
	}

	// The expectation: synth's weights, merged in memory by lora.Merge.
	opts := synth.Options{Preset: preset, Seed: 5}
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	weights := mapWeights{}
	var targets []*lora.Target
	for _, p := range params {
		vals, err := p.Values()
		if err != nil {
			t.Fatal(err)
		}
		weights[p.Net+"/"+p.Name] = vals
		if strings.HasSuffix(p.Name, ".weight") && len(p.Shape) >= 2 {
			targets = append(targets, &lora.Target{Net: p.Net, Name: p.Name, Shape: p.Shape, Data: vals})
		}
	}
	l, err := lora.Open(loraFile)
	if err != nil {
		t.Fatal(err)
	}
	if l.Format != lora.FormatKohya {
		t.Errorf("synth --lora wrote a %s file", l.Format)
	}
	if rep, err := lora.Merge(targets, true, lora.Scaled{LoRA: l, Scale: 0.75}); err != nil || rep.Merged != len(l.Modules) {
		t.Fatalf("merge: %+v %v", rep, err)
	}
	want := filepath.Join(root, "want", "tiny")
	opts.Weights, opts.Doc = weights, "sdgate import: tiny.safetensors"
	if _, err := synth.Write(context.Background(), want, opts, nil); err != nil {
		t.Fatal(err)
	}
	nets := []string{"text_encoder/model.onnx", "unet/model.onnx", "vae_decoder/model.onnx"}
	if synth.Family(preset) == synth.FamilySDXL {
		nets = append(nets, "text_encoder_2/model.onnx")
	}
	for _, name := range nets {
		w, _ := os.ReadFile(filepath.Join(want, name))
		g, err := os.ReadFile(filepath.Join(merged, name))
		if err != nil || !bytes.Equal(w, g) {
			t.Errorf("%s: the baked LoRA differs from lora.Merge's (%v)", name, err)
		}
		b, _ := os.ReadFile(filepath.Join(base, name))
		if name != "vae_decoder/model.onnx" && bytes.Equal(bytes.Replace(g, onnxDoc("sdgate import: tiny.safetensors"), onnxDoc("sdgate synth: preset "+preset+", seed 5, random weights"), 1), b) {
			t.Errorf("%s: the LoRA changed nothing", name)
		}
	}
}

// TestImportDiffusersFolder: a diffusers folder (weights in .safetensors,
// the tokenizer's merges.txt beside them) imports like a checkpoint; SDXL's
// has text_encoder_2/ too.
func TestImportDiffusersFolder(t *testing.T) {
	for _, preset := range []string{"tiny", "sdxl-tiny"} {
		t.Run(preset, func(t *testing.T) { testImportDiffusersFolder(t, preset) })
	}
}

func testImportDiffusersFolder(t *testing.T, preset string) {
	root := t.TempDir()
	ref, pipe, got := filepath.Join(root, "ref"), filepath.Join(root, "pipe"), filepath.Join(root, "got")
	opts := synth.Options{Preset: preset, Seed: 8}
	if _, err := synth.Write(context.Background(), ref, opts, nil); err != nil {
		t.Fatal(err)
	}
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]safetensors.Entry{}
	for _, p := range params {
		vals, err := p.Values()
		if err != nil {
			t.Fatal(err)
		}
		file := map[string]string{"unet": "unet/diffusion_pytorch_model.safetensors", "text_encoder": "text_encoder/model.safetensors",
			"text_encoder_2": "text_encoder_2/model.safetensors",
			"vae_decoder":    "vae/diffusion_pytorch_model.safetensors", "vae_encoder": "vae/diffusion_pytorch_model.safetensors"}[p.Net]
		files[file] = append(files[file], safetensors.Float32Entry(p.Name, safetensors.F32, p.Shape, vals))
	}
	for file, entries := range files {
		path := filepath.Join(pipe, file)
		os.MkdirAll(filepath.Dir(path), 0o755)
		var buf bytes.Buffer
		if err := safetensors.Write(&buf, nil, entries); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(pipe, "tokenizer"), os.DirFS(filepath.Join(ref, "tokenizer"))); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"import", pipe, "--out", got, "--fp32", "--attention", "plain"}, mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("import: %v\n%s", err, stderr.String())
	}
	if !strings.Contains(stdout.String(), "every checkpoint tensor was used") {
		t.Errorf("output: %s", stdout.String())
	}
	names := []string{"unet/model.onnx", "text_encoder/model.onnx", "vae_encoder/model.onnx", "tokenizer/vocab.json", "model_index.json"}
	if preset == "sdxl-tiny" {
		names = append(names, "text_encoder_2/model.onnx", "tokenizer_2/vocab.json", "tokenizer_2/tokenizer_config.json")
	}
	for _, name := range names {
		w, _ := os.ReadFile(filepath.Join(ref, name))
		g, _ := os.ReadFile(filepath.Join(got, name))
		g = bytes.Replace(g, onnxDoc("sdgate import: pipe"), onnxDoc("sdgate synth: preset "+preset+", seed 8, random weights"), 1)
		if !bytes.Equal(w, g) {
			t.Errorf("%s differs", name)
		}
	}
}

// TestImportRefusesSDXLRefiner: an SDXL refiner (its one encoder OpenCLIP
// bigG) is refused by name, and nothing is written.
func TestImportRefusesSDXLRefiner(t *testing.T) {
	root := t.TempDir()
	ckpt, refiner, out := filepath.Join(root, "xl.safetensors"), filepath.Join(root, "refiner.safetensors"), filepath.Join(root, "out")
	var stdout, stderr bytes.Buffer
	if err := run(context.Background(), []string{"synth", "--preset", "sdxl-tiny", "--out", filepath.Join(root, "xl"), "--checkpoint", ckpt},
		mapEnv(nil), &stdout, &stderr); err != nil {
		t.Fatalf("synth: %v\n%s", err, stderr.String())
	}
	in, err := safetensors.Open(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var entries []safetensors.Entry
	for _, info := range in.Tensors() {
		if strings.HasPrefix(info.Name, "conditioner.embedders.0.") {
			continue
		}
		vals, err := in.Float32(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		name := strings.Replace(info.Name, "conditioner.embedders.1.", "conditioner.embedders.0.", 1)
		entries = append(entries, safetensors.Float32Entry(name, safetensors.F16, info.Shape, vals))
	}
	var buf bytes.Buffer
	if err := safetensors.Write(&buf, nil, entries); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(refiner, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	err = run(context.Background(), []string{"import", refiner, "--out", out}, mapEnv(nil), &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "SDXL refiner") || !strings.Contains(err.Error(), "refiner.safetensors") {
		t.Errorf("err %v, want the SDXL refiner refused naming the file", err)
	}
	if _, err := os.Stat(out); !os.IsNotExist(err) {
		t.Errorf("a refused import created %s", out)
	}
}
