package synth

import (
	"testing"
)

// TestSD2ParamCounts: the sd2 preset has the parameter counts of SD 2.x's
// networks (UNet2DConditionModel; the 23-layer CLIPTextModel diffusers
// converts OpenCLIP ViT-H into).
func TestSD2ParamCounts(t *testing.T) {
	p := presets["sd2"]
	p.text.vocab = 49408
	o := netOptions{float: dtFloat16, timestep: TimestepFloatBatch}
	for name, tc := range map[string]struct {
		g    *graph
		want int64
	}{
		"text_encoder": {buildTextEncoder(p.text, o, false), 340_387_840},
		"unet":         {buildUNet(p.unet, o), 865_910_724},
		"vae_decoder":  {buildVAEDecoder(p.vae, o), 49_490_199},
	} {
		if got := tc.g.paramCount(); got != tc.want {
			t.Errorf("%s: %d parameters, want %d", name, got, tc.want)
		}
	}
}
