package models

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd/spec"
)

// paramSource serves a synth folder's own weights by name (lora.Source).
type paramSource map[string]synth.Param

func (s paramSource) Check(net, name string, shape []int64) error { return nil }

func (s paramSource) Float32(net, name string, shape []int64) ([]float32, error) {
	return s[net+"/"+name].Values()
}

// TestSDXLLoRAAliasThroughRegistry: on an sdxl-tiny folder, a kohya SDXL
// LoRA in loras/ serves as an alias (listed, loaded, with a digest of its
// own) and as a request's loras; both give exactly the image of a folder
// whose weights this test merged, the base's image differs, scale 0 is
// the base's.
func TestSDXLLoRAAliasThroughRegistry(t *testing.T) {
	open, variant := testOpeners(t)
	root := t.TempDir()
	opts := synth.Options{Preset: "sdxl-tiny", Seed: 5}
	base := filepath.Join(root, "models", "xl")
	if _, err := synth.Write(context.Background(), base, opts, nil); err != nil {
		t.Fatal(err)
	}
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	src := paramSource{}
	var specs, all []lora.Spec
	var unet []string
	for _, p := range params {
		src[p.Net+"/"+p.Name] = p
		if len(p.Shape) >= 2 && strings.HasSuffix(p.Name, ".weight") {
			all = append(all, lora.Spec{Net: p.Net, Name: p.Name, Shape: p.Shape})
		}
		if p.Net == "unet" && strings.HasSuffix(p.Name, ".weight") {
			unet = append(unet, strings.TrimSuffix(p.Name, ".weight"))
		}
		n := p.Name
		if (p.Net == "unet" && (strings.HasSuffix(n, ".to_k.weight") || strings.HasSuffix(n, ".proj_out.weight") || strings.HasSuffix(n, "resnets.0.conv2.weight"))) ||
			((p.Net == "text_encoder" || p.Net == "text_encoder_2") && strings.HasSuffix(n, ".q_proj.weight")) {
			specs = append(specs, lora.Spec{Net: p.Net, Name: n, Shape: p.Shape})
		}
	}
	l, err := lora.Synthesize(specs, 3, 3, 21)
	if err != nil {
		t.Fatal(err)
	}
	// The test's own bake of the LoRA at 0.75, from its peft form.
	merged, _, err := lora.Apply(src, all, true, lora.Scaled{LoRA: l, Scale: 0.75})
	if err != nil {
		t.Fatal(err)
	}
	bakedOpts := opts
	bakedOpts.Weights = merged
	baked := filepath.Join(root, "baked")
	if _, err := synth.Write(context.Background(), baked, bakedOpts, nil); err != nil {
		t.Fatal(err)
	}
	// The folder serves it in kohya's SDXL form.
	var buf bytes.Buffer
	if err := lora.WriteKohyaSDXL(&buf, l, safetensors.F32, unet); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(base, LoRADir), 0o755)
	if err := os.WriteFile(filepath.Join(base, LoRADir, "style.safetensors"), buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(base, "sdgate.json")
	var cfg map[string]any
	if data, err := os.ReadFile(cfgPath); err != nil || json.Unmarshal(data, &cfg) != nil {
		t.Fatalf("read %s: %v", cfgPath, err)
	}
	cfg["aliases"] = map[string]any{"xl-styled": map[string]any{"loras": []any{map[string]any{"name": "style", "scale": 0.75}}}}
	data, _ := json.Marshal(cfg)
	os.WriteFile(cfgPath, data, 0o644)

	r, err := NewRegistry(RegistryOptions{Open: open, OpenVariant: variant, Dir: filepath.Join(root, "models"), KeepAlive: -1, MaxResident: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close(context.Background())
	if b := r.Broken(); len(b) > 0 {
		t.Fatalf("broken: %+v", b)
	}
	var ids []string
	for _, m := range r.Models() {
		ids = append(ids, m.ID)
	}
	if !slices.Equal(ids, []string{"xl", "xl-styled"}) {
		t.Fatalf("models %v", ids)
	}
	xl, _ := r.Resolve("xl")
	styled, _ := r.Resolve("xl-styled")
	if styled.Base != "xl" || styled.Digest == "" || styled.Digest == xl.Digest {
		t.Errorf("alias %+v: wants base xl and a digest of its own", styled)
	}

	req := spec.Request{Prompt: "a lighthouse at dusk", Seed: 3, HasSeed: true, Steps: 2}
	gen := func(id string, loras ...spec.LoRA) []byte {
		t.Helper()
		rq := req
		rq.LoRAs = loras
		res, err := r.Generate(context.Background(), id, rq)
		if err != nil {
			t.Fatalf("%s %v: %v", id, loras, err)
		}
		return res.Images[0].Image.Pix
	}
	bakedReg, err := NewRegistry(RegistryOptions{Open: open, Dir: filepath.Join(root), KeepAlive: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer bakedReg.Close(context.Background())
	res, err := bakedReg.Generate(context.Background(), "baked", req)
	if err != nil {
		t.Fatal(err)
	}
	want := res.Images[0].Image.Pix

	if got := gen("xl-styled"); !bytes.Equal(got, want) {
		t.Error("SDXL LoRA alias: image differs from the folder the test merged")
	}
	if got := gen("xl", spec.LoRA{Name: "style", Scale: 0.75}); !bytes.Equal(got, want) {
		t.Error("SDXL request LoRA: image differs from the folder the test merged")
	}
	plain := gen("xl")
	if bytes.Equal(plain, want) {
		t.Error("the SDXL base gives the LoRA's image")
	}
	if got := gen("xl", spec.LoRA{Name: "style", Scale: 0}); !bytes.Equal(got, plain) {
		t.Error("scale 0 differs from the SDXL base")
	}
}
