package synth

import "sort"

// preset is one model size: the networks' shapes and the defaults a
// pipeline should use for it (written to sdgate.json).
type preset struct {
	unet unetConfig
	text textConfig // vocab is set from the tokenizer
	vae  vaeConfig

	width, height int
	steps         int
	guidance      float64
	learnedMerges int // BPE merges to learn when no CLIP vocabulary is given
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
