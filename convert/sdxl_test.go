package convert_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

var tinyXL = synth.Options{Preset: "sdxl-tiny", Seed: 2}

// renamed rewrites src with every key starting with from moved to to.
func renamed(t *testing.T, src, from, to string) string {
	return rewrite(t, src, nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		if rest, ok := strings.CutPrefix(info.Name, from); ok {
			return []safetensors.Entry{safetensors.Float32Entry(to+rest, safetensors.F32, info.Shape, vals)}
		}
		return keep(info, vals)
	})
}

// replaced rewrites src with key's tensor swapped for shape and vals
// (nil shape drops it).
func replaced(t *testing.T, src, key string, shape []int64, vals []float32) string {
	return rewrite(t, src, nil, func(info safetensors.Info, v []float32) []safetensors.Entry {
		if info.Name != key {
			return keep(info, v)
		}
		if shape == nil {
			return nil
		}
		return []safetensors.Entry{safetensors.Float32Entry(key, safetensors.F32, shape, vals)}
	})
}

func TestSDXLDetection(t *testing.T) {
	base := writeLDM(t, tinyXL, safetensors.F32)
	ck, err := convert.OpenCheckpoint(base, convert.Options{Family: convert.FamilySDXL})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if ck.Family != convert.FamilySDXL || ck.ContextDim != 32+48 || ck.Prediction != convert.PredictEpsilon || ck.Inpaint || ck.EMA {
		t.Errorf("detected %+v", ck.Info)
	}

	vpred := rewrite(t, base, map[string]string{"modelspec.prediction_type": "v"}, keep)
	if v, err := convert.OpenCheckpoint(vpred, convert.Options{}); err != nil || v.Prediction != convert.PredictV {
		t.Errorf("v-prediction metadata: %+v, %v", v, err)
	} else {
		v.Close()
	}

	// The published file's logit_scale and position ids are reported, not errors.
	extra := rewrite(t, base, nil, keep,
		safetensors.Float32Entry("conditioner.embedders.1.model.logit_scale", safetensors.F32, nil, []float32{4.6}),
		safetensors.Float32Entry("conditioner.embedders.0.transformer.text_model.embeddings.position_ids", safetensors.F32, []int64{1, 77}, make([]float32, 77)))
	ex, err := convert.OpenCheckpoint(extra, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ex.Close()
	opts := tinyXL
	opts.Weights = ex
	if _, err := synth.Write(context.Background(), filepath.Join(t.TempDir(), "m"), opts, nil); err != nil {
		t.Fatal(err)
	}
	unused := ex.Unused()
	if len(unused) != 2 || !strings.Contains(unused[0].Reason, "position ids") || !strings.Contains(unused[1].Reason, "logit scale") {
		t.Errorf("unused %+v", unused)
	}
}

// TestSDXLReplacementVAE: --vae replaces SDXL's baked-in VAE as SD's.
func TestSDXLReplacementVAE(t *testing.T) {
	base := writeLDM(t, tinyXL, safetensors.F32)
	vae := standaloneVAE(t, base, func(v float32) float32 { return -v })
	ck, err := convert.OpenCheckpoint(base, convert.Options{VAE: vae})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	opts := tinyXL
	opts.Weights = ck
	if _, err := synth.Write(context.Background(), filepath.Join(t.TempDir(), "m"), opts, nil); err != nil {
		t.Fatal(err)
	}
	got, err := ck.Float32("vae_decoder", "decoder.conv_out.bias", []int64{3})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := safetensors.Open(base)
	if err != nil {
		t.Fatal(err)
	}
	defer ref.Close()
	want, _ := ref.Float32("first_stage_model.decoder.conv_out.bias")
	if got[0] != -want[0] {
		t.Errorf("conv_out.bias[0] %v, want the replacement's %v", got[0], -want[0])
	}
	for _, u := range ck.Unused() {
		if u.Reason != "replaced by --vae" {
			t.Errorf("unused %+v", u)
		}
	}
}

// TestSDXLProjectionTransposed: OpenCLIP's text_projection P is used as
// x·P, so the graph's Linear weight is its transpose.
func TestSDXLProjectionTransposed(t *testing.T) {
	const key = "conditioner.embedders.1.model.text_projection"
	p := make([]float32, 48*48)
	for i := range p {
		p[i] = float32(i)
	}
	path := replaced(t, writeLDM(t, tinyXL, safetensors.F32), key, []int64{48, 48}, p)
	ck, err := convert.OpenCheckpoint(path, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	w, err := ck.Float32("text_encoder_2", "text_projection.weight", []int64{48, 48})
	if err != nil {
		t.Fatal(err)
	}
	for out := range 48 {
		for in := range 48 {
			if w[out*48+in] != p[in*48+out] {
				t.Fatalf("W[%d][%d] = %v, want P[%d][%d] = %v", out, in, w[out*48+in], in, out, p[in*48+out])
			}
		}
	}
	if err := ck.Check("text_encoder_2", "text_projection.weight", []int64{48, 32}); !errors.Is(err, convert.ErrShape) {
		t.Errorf("a [48 48] projection as [48 32]: %v", err)
	}
}

// TestSDXLRefusals: SDXL files that cannot be imported say what and why.
func TestSDXLRefusals(t *testing.T) {
	base := writeLDM(t, tinyXL, safetensors.F32)
	const (
		clip     = "conditioner.embedders.0.transformer."
		openclip = "conditioner.embedders.1.model."
	)
	noCLIP := rewrite(t, base, nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		if strings.HasPrefix(info.Name, clip) {
			return nil
		}
		return keep(info, vals)
	})
	refiner := renamed(t, noCLIP, openclip, "conditioner.embedders.0.model.")
	tok := openclip + "token_embedding.weight"
	narrow := replaced(t, base, tok, []int64{10, 40}, make([]float32, 400))
	checkRefusals(t, []refusal{
		{"refiner", refiner, convert.Options{}, convert.ErrSDXL, "SDXL refiner"},
		{"no CLIP ViT-L", noCLIP, convert.Options{}, convert.ErrUnsupported, "without CLIP ViT-L"},
		{"widths", narrow, convert.Options{}, convert.ErrShape, "context width 80"},
		{"family flag", base, convert.Options{Family: convert.FamilySD1}, convert.ErrUnsupported, "--family sd15, but the checkpoint is sdxl"},
	})

	// Files that open but do not fit the graphs: the error names the key.
	in0 := openclip + "transformer.resblocks.0.attn.in_proj_weight"
	for _, tc := range []struct {
		name, key string
		path      string
		want      error
	}{
		{"no label_emb", "model.diffusion_model.label_emb.0.2.weight", replaced(t, base, "model.diffusion_model.label_emb.0.2.weight", nil, nil), convert.ErrMissing},
		{"in_proj not thirds", in0, replaced(t, base, in0, []int64{145, 48}, make([]float32, 145*48)), convert.ErrShape},
		{"in_proj of another width", in0, replaced(t, base, in0, []int64{3 * 40, 48}, make([]float32, 120*48)), convert.ErrShape},
		{"projection a vector", openclip + "text_projection", replaced(t, base, openclip+"text_projection", []int64{48}, make([]float32, 48)), convert.ErrShape},
		{"no second encoder layer", openclip + "transformer.resblocks.1.ln_2.bias",
			replaced(t, base, openclip+"transformer.resblocks.1.ln_2.bias", nil, nil), convert.ErrMissing},
		{"deeper transformer missing", "model.diffusion_model.input_blocks.5.1.transformer_blocks.1.attn1.to_q.weight",
			replaced(t, base, "model.diffusion_model.input_blocks.5.1.transformer_blocks.1.attn1.to_q.weight", nil, nil), convert.ErrMissing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ck, err := convert.OpenCheckpoint(tc.path, convert.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			opts := tinyXL
			opts.Weights = ck
			_, err = synth.Write(context.Background(), filepath.Join(t.TempDir(), "m"), opts, nil)
			if !errors.Is(err, synth.ErrWeights) || !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.key) {
				t.Errorf("err %v, want %v naming %s", err, tc.want, tc.key)
			}
		})
	}

	// A truncated SDXL file is refused when opened, never read past its end.
	data, err := os.ReadFile(base)
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(t.TempDir(), "cut.safetensors")
	if err := os.WriteFile(cut, data[:len(data)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := openErr(t, cut, convert.Options{}); err == nil {
		t.Error("truncated SDXL checkpoint opened")
	}
}
