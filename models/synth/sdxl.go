package synth

import (
	"math"
	"path/filepath"
)

// SDXL's presets and the parts of its graphs SD 1.x and 2.x do not have:
// a second text encoder (OpenCLIP bigG with a projection) and the UNet's
// "text_time" added conditioning.

// FamilySDXL is the SDXL family (base, Turbo, their inpainting UNets).
const FamilySDXL = "sdxl"

// sdxlTimeIDs is the length of SDXL base's time_ids: original size,
// crop top-left and target size, two numbers each.
const sdxlTimeIDs = 6

// sdxlText2 is a second text encoder's shape, for SDXL presets.
type sdxlText2 = textConfig

var (
	// sdxlTiny has SDXL's layout at toy widths: three levels, no attention
	// on the first, deeper transformers further down, two text encoders of
	// different widths and a projected pooled embedding. Its native size is
	// 128x128, so its buckets are SDXL's scaled by 1/8.
	sdxlTiny = preset{
		unet: unetConfig{
			channels: []int64{32, 32, 64}, layers: 1, attn: []bool{false, true, true},
			headDim: 8, ctxDim: 32 + 48, groups: 8, linearProj: true,
			depth: []int{0, 1, 2}, midDepth: 2, addTextDim: 48, addTimeDim: 32,
		},
		text:  textConfig{hidden: 32, layers: 2, heads: 4, maxLen: 77, hiddenStates: true},
		text2: &sdxlText2{hidden: 48, layers: 2, heads: 4, maxLen: 77, gelu: true, hiddenStates: true, projection: 48},
		vae:   vaeConfig{channels: []int64{16, 16, 32, 32}, layers: 1, groups: 8},

		width: 128, height: 128, steps: 4, guidance: 5,
		learnedMerges: 600,
		family:        FamilySDXL, pad: padToken,
		scalingFactor: sdxlScalingFactor,
	}
	// sdxl has SDXL base 1.0's widths and depths: UNet 2,567,463,684
	// parameters, CLIP ViT-L and OpenCLIP ViT-bigG (32 layers) text
	// encoders, SD's VAE; 1024x1024, 50 steps, guidance 5.
	sdxlBase = preset{
		unet: unetConfig{
			channels: []int64{320, 640, 1280}, layers: 2, attn: []bool{false, true, true},
			headDim: 64, ctxDim: 768 + 1280, groups: 32, linearProj: true,
			depth: []int{0, 2, 10}, midDepth: 10, addTextDim: 1280, addTimeDim: 256,
		},
		text:  textConfig{hidden: 768, layers: 12, heads: 12, maxLen: 77, hiddenStates: true},
		text2: &sdxlText2{hidden: 1280, layers: 32, heads: 20, maxLen: 77, gelu: true, hiddenStates: true, projection: 1280},
		vae:   vaeConfig{channels: []int64{128, 256, 512, 512}, layers: 2, groups: 32},

		width: 1024, height: 1024, steps: 50, guidance: 5,
		learnedMerges: 600,
		family:        FamilySDXL, pad: padToken,
		scalingFactor: sdxlScalingFactor,
	}
)

// sdxlScalingFactor is SDXL's VAE latent scale (vae/config.json).
const sdxlScalingFactor = 0.13025

// addedEmbedding is diffusers' text_time added embedding: every time id
// through the same sinusoid as the timestep (cos first, addTimeDim wide),
// flattened per image, joined to text_embeds and sent through a two-layer
// MLP (add_embedding) to the time embedding's width.
func (b *builder) addedEmbedding(textEmbeds, timeIDs string, cfg unetConfig) string {
	t := timeIDs
	if b.float != dtFloat {
		t = b.op("Cast", []string{t}, attrI("to", int64(dtFloat)))
	}
	t = b.op("Reshape", []string{t, b.ints(-1, 1)}) // [B*6, 1]
	emb := b.sinusoid(t, cfg.addTimeDim)
	emb = b.op("Reshape", []string{emb, b.ints(-1, sdxlTimeIDs*cfg.addTimeDim)})
	if b.float != dtFloat {
		emb = b.op("Cast", []string{emb}, attrI("to", int64(b.float)))
	}
	emb = b.op("Concat", []string{textEmbeds, emb}, attrI("axis", 1))
	in := cfg.addTextDim + sdxlTimeIDs*cfg.addTimeDim
	h := b.linear(emb, "add_embedding.linear_1", in, cfg.tembDim(), true)
	return b.linear(b.silu(h), "add_embedding.linear_2", cfg.tembDim(), cfg.tembDim(), true)
}

// sinusoid embeds t [N, 1] (float32) as [N, dim]: cos(t·f_i) then
// sin(t·f_i), f_i = 10000^(-i/(dim/2)) (flip_sin_to_cos, no shift).
func (b *builder) sinusoid(t string, dim int64) string {
	half := dim / 2
	freqs := make([]float32, half)
	for i := range freqs {
		freqs[i] = float32(math.Exp(-math.Log(10000) * float64(i) / float64(half)))
	}
	arg := b.op("Mul", []string{t, b.floats(dtFloat, []int64{1, half}, freqs...)})
	return b.op("Concat", []string{b.op("Cos", []string{arg}), b.op("Sin", []string{arg})}, attrI("axis", 1))
}

// turbo is p distilled adversarially: SDXL-Turbo and SD-Turbo run at
// 512x512 (the SDXL and SD 2 presets), one step, no guidance, and predict
// the noise (SD-Turbo is SD 2.1 base's distillation).
func turbo(p preset) preset {
	if p.family == FamilySDXL || p.family == FamilySD2 {
		p.width, p.height = min(p.width, 512), min(p.height, 512)
	}
	p.steps, p.guidance, p.prediction = 1, 0, "epsilon"
	return p
}

// xlIndex turns model_index.json into SDXL base's (or its inpainting
// pipeline's): a second tokenizer and text encoder, and the two switches
// that decide the negative embeddings and the time_ids.
func xlIndex(index map[string]any, opts Options) {
	index["_class_name"] = "ORTStableDiffusionXLPipeline"
	if opts.Inpaint {
		index["_class_name"] = "ORTStableDiffusionXLInpaintPipeline"
		index["requires_aesthetics_score"] = false
	}
	index["text_encoder_2"] = []string{"transformers", "CLIPTextModelWithProjection"}
	index["tokenizer_2"] = []string{"transformers", "CLIPTokenizer"}
	index["scheduler"] = []string{"diffusers", "EulerDiscreteScheduler"}
	index["force_zeros_for_empty_prompt"] = true
	delete(index, "safety_checker")
	delete(index, "requires_safety_checker")
	delete(index, "feature_extractor")
}

// xlScheduler is SDXL base 1.0's scheduler_config.json.
func xlScheduler(prediction string) map[string]any {
	return map[string]any{
		"_class_name":         "EulerDiscreteScheduler",
		"_diffusers_version":  diffusersVersion,
		"beta_start":          0.00085,
		"beta_end":            0.012,
		"beta_schedule":       "scaled_linear",
		"num_train_timesteps": 1000,
		"clip_sample":         false,
		"interpolation_type":  "linear",
		"prediction_type":     prediction,
		"sample_max_value":    1.0,
		"set_alpha_to_one":    false,
		"skip_prk_steps":      true,
		"steps_offset":        1,
		"timestep_spacing":    "leading",
		"trained_betas":       nil,
		"use_karras_sigmas":   false,
	}
}

// turboScheduler switches a scheduler config to the Turbo models':
// ancestral Euler on trailing timesteps (so one step starts at t = 999).
func turboScheduler(s map[string]any) {
	s["_class_name"] = "EulerAncestralDiscreteScheduler"
	s["timestep_spacing"] = "trailing"
	s["prediction_type"] = "epsilon"
	delete(s, "skip_prk_steps")
	delete(s, "set_alpha_to_one")
}

// writeNetConfigs writes the config.json files real exports carry beside
// the graphs where the loader needs them: the UNet's sample_size (its
// native size) and the VAE's scaling_factor.
func writeNetConfigs(dir string, opts Options, p preset) error {
	if p.scalingFactor == 0 {
		return nil
	}
	unet := map[string]any{"sample_size": p.width / 8, "in_channels": 4}
	if opts.Inpaint {
		unet["in_channels"] = 9
	}
	if p.unet.addTextDim > 0 {
		unet["addition_embed_type"] = "text_time"
		unet["addition_time_embed_dim"] = p.unet.addTimeDim
		unet["projection_class_embeddings_input_dim"] = p.unet.addTextDim + sdxlTimeIDs*p.unet.addTimeDim
	}
	files := map[string]any{
		"unet/config.json":        unet,
		"vae_decoder/config.json": map[string]any{"scaling_factor": p.scalingFactor, "force_upcast": true},
	}
	if !opts.NoVAEEncoder {
		files["vae_encoder/config.json"] = map[string]any{"scaling_factor": p.scalingFactor, "force_upcast": true}
	}
	for name, v := range files {
		if err := writeJSON(filepath.Join(dir, filepath.FromSlash(name)), v); err != nil {
			return err
		}
	}
	return nil
}
