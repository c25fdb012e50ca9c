package convert_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

var tiny = synth.Options{Preset: "tiny", Seed: 1}

func openErr(t *testing.T, path string, opts convert.Options) error {
	t.Helper()
	ck, err := convert.OpenCheckpoint(path, opts)
	if err == nil {
		ck.Close()
	}
	return err
}

// refusal is a file OpenCheckpoint must refuse with want, saying text.
type refusal struct {
	name string
	path string
	opts convert.Options
	want error
	text string
}

func checkRefusals(t *testing.T, cases []refusal) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := openErr(t, tc.path, tc.opts)
			if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.text) {
				t.Errorf("err %v, want %v with %q", err, tc.want, tc.text)
			}
		})
	}
}

func TestDetectionRefusals(t *testing.T) {
	base := writeLDM(t, tiny, safetensors.F32)
	extra := func(name string) string {
		return rewrite(t, base, nil, keep, safetensors.Float32Entry(name, safetensors.F32, []int64{1}, []float32{0}))
	}
	convIn := func(ch int64) string {
		return rewrite(t, base, nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
			if info.Name == "model.diffusion_model.input_blocks.0.0.weight" {
				shape := []int64{info.Shape[0], ch, 3, 3}
				return []safetensors.Entry{safetensors.Float32Entry(info.Name, safetensors.F32, shape, make([]float32, shape[0]*ch*9))}
			}
			return keep(info, vals)
		})
	}
	checkRefusals(t, []refusal{
		{"stray sdxl key", extra("conditioner.embedders.1.model.transformer.resblocks.9.mlp.c_proj.bias"), convert.Options{}, convert.ErrUnsupported, "SDXL-style conditioner"},
		{"lora", extra("lora_unet_down_blocks_0_attentions_0_proj_in.lora_down.weight"), convert.Options{}, convert.ErrUnsupported, "is a LoRA"},
		{"8 channels", convIn(8), convert.Options{}, convert.ErrUnsupported, "8 input channels"},
		{"family flag", base, convert.Options{Family: convert.FamilySD2}, convert.ErrUnsupported, "--family sd2"},
		{"prediction flag", base, convert.Options{Prediction: "x0"}, convert.ErrUnsupported, "prediction"},
		{"no unet", rewrite(t, base, nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
			if strings.HasPrefix(info.Name, "model.") {
				return nil
			}
			return keep(info, vals)
		}), convert.Options{}, convert.ErrUnsupported, "no LDM UNet"},
		{"pickle", strings.TrimSuffix(base, ".safetensors") + ".ckpt", convert.Options{}, safetensors.ErrPickle, "arbitrary code"},
	})
	ck, err := convert.OpenCheckpoint(convIn(9), convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if !ck.Inpaint {
		t.Error("9-channel conv_in not detected as inpainting")
	}
}

// toOpenCLIP rewrites an SD 1 checkpoint's text encoder in SD 2's OpenCLIP
// layout: q, k, v packed into in_proj, plus a last layer and the
// projection SD 2 does not use.
func toOpenCLIP(t *testing.T, path string, md map[string]string) string {
	const pre = "cond_stage_model.transformer.text_model."
	packed := map[string][3][]float32{}
	shapes := map[string][]int64{}
	var order []string
	var extra []safetensors.Entry
	out := rewrite(t, path, md, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		rest, ok := strings.CutPrefix(info.Name, pre)
		if !ok {
			return keep(info, vals)
		}
		name := func(s string) []safetensors.Entry {
			return []safetensors.Entry{safetensors.Float32Entry("cond_stage_model.model."+s, safetensors.F32, info.Shape, vals)}
		}
		switch rest {
		case "embeddings.token_embedding.weight":
			return name("token_embedding.weight")
		case "embeddings.position_embedding.weight":
			return name("positional_embedding")
		case "final_layer_norm.weight", "final_layer_norm.bias":
			return name("ln_final." + rest[len("final_layer_norm."):])
		}
		var layer int
		var mod, param string
		if _, err := fmt.Sscanf(strings.ReplaceAll(rest, ".", " "), "encoder layers %d", &layer); err != nil {
			t.Fatalf("unexpected key %s", rest)
		}
		parts := strings.Split(rest, ".")
		mod, param = strings.Join(parts[3:len(parts)-1], "."), parts[len(parts)-1]
		block := fmt.Sprintf("transformer.resblocks.%d.", layer)
		switch mod {
		case "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj":
			key := block + "attn.in_proj_" + param
			p := packed[key]
			p[strings.Index("qkv", mod[10:11])] = vals
			packed[key] = p
			if _, seen := shapes[key]; !seen {
				order = append(order, key)
				shapes[key] = append([]int64{3 * info.Shape[0]}, info.Shape[1:]...)
			}
			return nil
		}
		ldm := map[string]string{"layer_norm1": "ln_1", "layer_norm2": "ln_2", "mlp.fc1": "mlp.c_fc", "mlp.fc2": "mlp.c_proj", "self_attn.out_proj": "attn.out_proj"}[mod]
		return name(block + ldm + "." + param)
	})
	for _, key := range order {
		p := packed[key]
		extra = append(extra, safetensors.Float32Entry("cond_stage_model.model."+key, safetensors.F32, shapes[key], slices.Concat(p[0], p[1], p[2])))
	}
	extra = append(extra,
		safetensors.Float32Entry("cond_stage_model.model.transformer.resblocks.9.ln_1.weight", safetensors.F32, []int64{1}, []float32{1}),
		safetensors.Float32Entry("cond_stage_model.model.text_projection", safetensors.F32, []int64{1}, []float32{1}))
	return rewrite(t, out, md, keep, extra...)
}

func TestSD2OpenCLIP(t *testing.T) {
	sd1 := writeLDM(t, tiny, safetensors.F32)
	sd2 := toOpenCLIP(t, sd1, map[string]string{"modelspec.prediction_type": "v"})
	if err := openErr(t, toOpenCLIP(t, sd1, nil), convert.Options{}); !errors.Is(err, convert.ErrPrediction) {
		t.Errorf("SD 2 without prediction type: %v", err)
	}
	ref, err := convert.OpenCheckpoint(sd1, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	ck, err := convert.OpenCheckpoint(sd2, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Family != convert.FamilySD2 || ck.Prediction != convert.PredictV {
		t.Fatalf("detected %+v", ck.Info)
	}
	for _, tn := range synthTensors(t, tiny) {
		if tn.Net != "text_encoder" {
			continue
		}
		want, err := ref.Float32(tn.Net, tn.Name, tn.Shape)
		if err != nil {
			t.Fatal(err)
		}
		got, err := ck.Float32(tn.Net, tn.Name, tn.Shape)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s differs after the OpenCLIP mapping", tn.Name)
		}
	}
	reasons := map[string]string{}
	for _, u := range ck.Unused() {
		if strings.HasPrefix(u.Key, "cond_stage_model.") {
			reasons[u.Key] = u.Reason
		}
	}
	if len(reasons) != 2 || !strings.Contains(reasons["cond_stage_model.model.transformer.resblocks.9.ln_1.weight"], "penultimate") ||
		!strings.Contains(reasons["cond_stage_model.model.text_projection"], "projection") {
		t.Errorf("unused text tensors %v", reasons)
	}
}

// TestEMAPreferred: the EMA copy is read when present, the other copy is
// reported, and NoEMA turns that round.
func TestEMAPreferred(t *testing.T) {
	base := writeLDM(t, tiny, safetensors.F32)
	var ema []safetensors.Entry
	path := rewrite(t, base, nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		out := keep(info, vals)
		if rest, ok := strings.CutPrefix(info.Name, "model."); ok {
			doubled := make([]float32, len(vals))
			for i, v := range vals {
				doubled[i] = 2 * v
			}
			ema = append(ema, safetensors.Float32Entry("model_ema."+strings.ReplaceAll(rest, ".", ""), safetensors.F32, info.Shape, doubled))
		}
		return out
	})
	path = rewrite(t, path, nil, keep, append(ema, safetensors.Float32Entry("model_ema.decay", safetensors.F32, nil, []float32{0.9999}))...)
	const name = "down_blocks.0.resnets.0.conv1.bias"
	for _, noEMA := range []bool{false, true} {
		ck, err := convert.OpenCheckpoint(path, convert.Options{NoEMA: noEMA})
		if err != nil {
			t.Fatal(err)
		}
		if ck.EMA == noEMA {
			t.Errorf("NoEMA %v: EMA %v", noEMA, ck.EMA)
		}
		ref, _ := safetensors.Open(base)
		want, _ := ref.Float32("model.diffusion_model.input_blocks.1.0.in_layers.2.bias")
		ref.Close()
		got, err := ck.Float32("unet", name, []int64{32})
		if err != nil {
			t.Fatal(err)
		}
		factor := float32(2)
		if noEMA {
			factor = 1
		}
		if got[0] != factor*want[0] {
			t.Errorf("NoEMA %v: %v, base %v", noEMA, got[0], want[0])
		}
		ck.Close()
	}
}

// TestReplacementVAE: --vae in the LDM layout (no prefix) and in the
// diffusers layout both replace the baked-in VAE, which is then reported.
func TestReplacementVAE(t *testing.T) {
	base := writeLDM(t, tiny, safetensors.F32)
	ldm := standaloneVAE(t, base, func(v float32) float32 { return v + 1 })
	var diffusers []safetensors.Entry
	for _, tn := range synthTensors(t, tiny) {
		if strings.HasPrefix(tn.Net, "vae_") {
			vals, err := tn.Values()
			if err != nil {
				t.Fatal(err)
			}
			for i := range vals {
				vals[i] += 1
			}
			diffusers = append(diffusers, safetensors.Float32Entry(tn.Name, safetensors.F32, tn.Shape, vals))
		}
	}
	diff := rewrite(t, base, nil, func(safetensors.Info, []float32) []safetensors.Entry { return nil }, diffusers...)

	ref, err := convert.OpenCheckpoint(base, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	for name, vae := range map[string]string{"ldm": ldm, "diffusers": diff} {
		t.Run(name, func(t *testing.T) {
			ck, err := convert.OpenCheckpoint(base, convert.Options{VAE: vae})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			for _, tn := range synthTensors(t, tiny) {
				if !strings.HasPrefix(tn.Net, "vae_") {
					continue
				}
				want, _ := ref.Float32(tn.Net, tn.Name, tn.Shape)
				got, err := ck.Float32(tn.Net, tn.Name, tn.Shape)
				if err != nil {
					t.Fatal(err)
				}
				for i := range want {
					if got[i] != want[i]+1 {
						t.Fatalf("%s[%d] = %v, want %v", tn.Name, i, got[i], want[i]+1)
					}
				}
			}
			replaced := 0
			for _, u := range ck.Unused() {
				switch {
				case strings.HasPrefix(u.Key, "first_stage_model.") && u.Reason == "replaced by --vae":
					replaced++
				case !strings.HasPrefix(u.Key, "model.") && !strings.HasPrefix(u.Key, "cond_stage_model."):
					t.Errorf("unused %+v", u) // the replacement's own tensors are all read
				}
			}
			if replaced != len(diffusers) {
				t.Errorf("%d baked-in VAE tensors reported replaced, want %d", replaced, len(diffusers))
			}
		})
	}
	if err := openErr(t, base, convert.Options{VAE: base + ".missing"}); err == nil {
		t.Error("missing --vae file accepted")
	}
}
