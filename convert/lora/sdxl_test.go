package lora_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// xlTargets are sdxl-tiny's weights of all three networks (torch layout).
func xlTargets(t *testing.T) []*lora.Target {
	t.Helper()
	params, err := synth.Params(synth.Options{Preset: "sdxl-tiny", Seed: 4})
	if err != nil {
		t.Fatal(err)
	}
	var out []*lora.Target
	for _, p := range params {
		if p.Net == "vae_decoder" || p.Net == "vae_encoder" || !strings.HasSuffix(p.Name, ".weight") || len(p.Shape) < 2 {
			continue
		}
		vals, err := p.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &lora.Target{Net: p.Net, Name: p.Name, Shape: p.Shape, Data: vals})
	}
	return out
}

// TestSDXLKohyaAndPeftMergeAlike: one LoRA written as peft
// (text_encoder_2. keys) and as kohya SDXL (LDM UNet names, lora_te1_ and
// lora_te2_) reads back to the networks it was made for and merges into
// the same weights; the LDM names need the whole UNet to be numbered.
func TestSDXLKohyaAndPeftMergeAlike(t *testing.T) {
	base := xlTargets(t)
	var specs []lora.Spec
	var unet []string
	for _, tg := range base {
		if tg.Net == "unet" {
			unet = append(unet, strings.TrimSuffix(tg.Name, ".weight"))
		}
		if strings.HasSuffix(tg.Name, "attn2.to_k.weight") || strings.HasSuffix(tg.Name, "resnets.0.conv1.weight") ||
			strings.HasSuffix(tg.Name, "self_attn.out_proj.weight") {
			specs = append(specs, lora.Spec{Net: tg.Net, Name: tg.Name, Shape: tg.Shape})
		}
	}
	l, err := lora.Synthesize(specs, 2, 1, 5)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	var buf bytes.Buffer
	if err := lora.WritePeft(&buf, l, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	files["peft"] = slices.Clone(buf.Bytes())
	buf.Reset()
	if err := lora.WriteKohyaSDXL(&buf, l, safetensors.F32, unet); err != nil {
		t.Fatal(err)
	}
	files["kohya"] = slices.Clone(buf.Bytes())
	if err := lora.WriteKohya(&buf, l, safetensors.F32); err == nil {
		t.Error("WriteKohya wrote text_encoder_2 modules under SD 1.x names")
	}
	merged := map[string][]*lora.Target{}
	for format, data := range files {
		f, err := safetensors.New(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := lora.Parse(f)
		if err != nil {
			t.Fatalf("%s: %v", format, err)
		}
		nets := map[string]int{}
		for _, m := range parsed.Modules {
			nets[m.Net]++
		}
		if nets["unet"] == 0 || nets["text_encoder"] == 0 || nets["text_encoder_2"] == 0 {
			t.Errorf("%s: modules per network %v", format, nets)
		}
		targets := xlTargets(t)
		rep, err := lora.Merge(targets, true, lora.Scaled{LoRA: parsed, Scale: 1.5})
		if err != nil || rep.Merged != len(specs) {
			t.Fatalf("%s: %+v %v", format, rep, err)
		}
		merged[format] = targets
		// Only a whole UNet numbers LDM blocks: a kohya SDXL UNet module
		// on a lone target is unmatched.
		if format == "kohya" {
			var lone []*lora.Target
			for _, tg := range xlTargets(t) {
				if tg.Net == "unet" && strings.HasSuffix(tg.Name, "attn2.to_k.weight") {
					lone = append(lone, tg)
				}
			}
			if _, err := lora.Merge(lone, true, lora.Scaled{LoRA: parsed, Scale: 1}); !errors.Is(err, lora.ErrUnmatched) {
				t.Errorf("LDM names without the UNet's layout: %v, want ErrUnmatched", err)
			}
		}
	}
	changed := 0
	for i, tg := range merged["peft"] {
		if !slices.Equal(tg.Data, merged["kohya"][i].Data) {
			t.Errorf("%s %s: kohya SDXL and peft merges differ", tg.Net, tg.Name)
		}
		if !slices.Equal(tg.Data, base[i].Data) {
			changed++
		}
	}
	if changed != len(specs) {
		t.Errorf("%d weights changed, the LoRA adapts %d", changed, len(specs))
	}
}

// TestOldDiffusersSDXLTextEncoder: diffusers before peft saved text-encoder
// LoRAs as <module>.lora_linear_layer.down/up.weight, SDXL's second
// encoder under text_encoder_2.
func TestOldDiffusersSDXLTextEncoder(t *testing.T) {
	var buf bytes.Buffer
	key := "text_encoder_2.text_model.encoder.layers.1.mlp.fc1.lora_linear_layer."
	safetensors.Write(&buf, nil, []safetensors.Entry{
		safetensors.Float32Entry(key+"down.weight", safetensors.F32, []int64{1, 2}, []float32{1, 2}),
		safetensors.Float32Entry(key+"up.weight", safetensors.F32, []int64{3, 1}, []float32{1, 1, 1}),
	})
	f, err := safetensors.New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	l, err := lora.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	tg := &lora.Target{Net: "text_encoder_2", Name: "text_model.encoder.layers.1.mlp.fc1.weight", Shape: []int64{3, 2}, Data: make([]float32, 6)}
	if rep, err := lora.Merge([]*lora.Target{tg}, true, lora.Scaled{LoRA: l, Scale: 1}); err != nil || rep.Merged != 1 {
		t.Fatalf("%+v %v", rep, err)
	}
	if want := []float32{1, 2, 1, 2, 1, 2}; !slices.Equal(tg.Data, want) {
		t.Errorf("merged %v, want %v", tg.Data, want)
	}
}
