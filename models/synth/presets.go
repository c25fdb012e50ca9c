package synth

import "sort"

// preset is one model size: the networks' shapes and the defaults a
// pipeline should use for it (written to sdgate.json).
type preset struct {
	unet unetConfig
	text textConfig // vocab is set from the tokenizer
	// text2 is SDXL's second text encoder (nil: one encoder).
	text2 *textConfig
	vae   vaeConfig

	width, height int
	steps         int
	guidance      float64
	learnedMerges int // BPE merges to learn when no CLIP vocabulary is given

	family     string // FamilySD1 when empty
	pad        string // the tokenizer's pad token; padToken when empty
	prediction string // the scheduler's prediction_type; epsilon when empty
	// scalingFactor is the VAE's latent scale written to its config.json
	// (0: none written, the loader's SD default 0.18215).
	scalingFactor float64
}

// Model families, as presets belong to them.
const (
	FamilySD1 = "sd15"
	FamilySD2 = "sd2"
)

// sd2Pad is SD 2.x's pad token: OpenCLIP pads prompts with "!" (id 0).
const sd2Pad = "!"

// Family is the model family of a preset ("" for an unknown preset).
func Family(preset string) string {
	p, ok := presets[preset]
	switch {
	case !ok:
		return ""
	case p.family == "":
		return FamilySD1
	}
	return p.family
}

var presets = map[string]preset{
	// tiny runs a 64x64 image in milliseconds on a laptop CPU: the test and
	// demo model. Two UNet levels, so latents must be even-sized.
	"tiny": {
		unet: unetConfig{
			channels: []int64{32, 64}, layers: 1, attn: []bool{true, true},
			heads: 4, ctxDim: 32, groups: 8,
		},
		text: textConfig{hidden: 32, layers: 2, heads: 4, maxLen: 77},
		vae:  vaeConfig{channels: []int64{16, 16, 32, 32}, layers: 1, groups: 8},

		width: 64, height: 64, steps: 4, guidance: 7.5,
		learnedMerges: 600,
	},
	// sd15 has Stable Diffusion 1.5's real widths and depths (UNet 860M
	// parameters): GPU benchmarks measure what a real model costs.
	"sd15": {
		unet: unetConfig{
			channels: []int64{320, 640, 1280, 1280}, layers: 2, attn: []bool{true, true, true, false},
			heads: 8, ctxDim: 768, groups: 32,
		},
		text: textConfig{hidden: 768, layers: 12, heads: 12, maxLen: 77},
		vae:  vaeConfig{channels: []int64{128, 256, 512, 512}, layers: 2, groups: 32},

		width: 512, height: 512, steps: 50, guidance: 7.5,
		learnedMerges: 600,
	},
	// sd2 has Stable Diffusion 2.x's shapes (UNet 866M parameters, the
	// 23-layer OpenCLIP ViT-H text encoder SD 2 runs) and the 768-v
	// model's defaults; Options.Prediction epsilon gives SD 2 base's.
	"sd2": {
		unet: unetConfig{
			channels: []int64{320, 640, 1280, 1280}, layers: 2, attn: []bool{true, true, true, false},
			headDim: 64, ctxDim: 1024, groups: 32, linearProj: true,
		},
		text: textConfig{hidden: 1024, layers: 23, heads: 16, maxLen: 77, gelu: true},
		vae:  vaeConfig{channels: []int64{128, 256, 512, 512}, layers: 2, groups: 32},

		width: 768, height: 768, steps: 50, guidance: 7.5,
		learnedMerges: 600,
		family:        FamilySD2, pad: sd2Pad, prediction: "v_prediction",
	},
	// tiny-sd2 is tiny with SD 2's layout: linear projections, fixed head
	// width, GELU text encoder, "!" padding, v-prediction.
	"tiny-sd2": {
		unet: unetConfig{
			channels: []int64{32, 64}, layers: 1, attn: []bool{true, true},
			headDim: 8, ctxDim: 32, groups: 8, linearProj: true,
		},
		text: textConfig{hidden: 32, layers: 2, heads: 4, maxLen: 77, gelu: true},
		vae:  vaeConfig{channels: []int64{16, 16, 32, 32}, layers: 1, groups: 8},

		width: 64, height: 64, steps: 4, guidance: 7.5,
		learnedMerges: 600,
		family:        FamilySD2, pad: sd2Pad, prediction: "v_prediction",
	},
	"sdxl-tiny": sdxlTiny,
	"sdxl":      sdxlBase,
}

// Presets lists the preset names Write accepts.
func Presets() []string {
	names := make([]string, 0, len(presets))
	for n := range presets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}
