package synth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// TestSDXLParamCounts: the sdxl preset has SDXL base 1.0's parameter
// counts (diffusers' UNet2DConditionModel 2,567,463,684; transformers'
// CLIPTextModel 123,060,480 and CLIPTextModelWithProjection 694,659,840),
// checked on the graphs only: the weights are never written here.
func TestSDXLParamCounts(t *testing.T) {
	p := presets["sdxl"]
	p.text.vocab = 49408
	text2 := *p.text2
	text2.vocab = 49408
	o := netOptions{float: dtFloat16, timestep: TimestepFloatBatch}
	for name, tc := range map[string]struct {
		g    *graph
		want int64
	}{
		"text_encoder":   {buildTextEncoder(p.text, o, false), 123_060_480},
		"text_encoder_2": {buildTextEncoderAs("text_encoder_2", text2, o, false), 694_659_840},
		"unet":           {buildUNet(p.unet, o), 2_567_463_684},
		"vae_decoder":    {buildVAEDecoder(p.vae, o), 49_490_199},
	} {
		if got := tc.g.paramCount(); got != tc.want {
			t.Errorf("%s: %d parameters, want %d", name, got, tc.want)
		}
	}
}

func TestSDXLTinyFolder(t *testing.T) {
	for _, tc := range []struct {
		opts      Options
		class     string
		scheduler string
		spacing   string
		steps     int
		guidance  float64
	}{
		{Options{Preset: "sdxl-tiny"}, "ORTStableDiffusionXLPipeline", "EulerDiscreteScheduler", "leading", 4, 5},
		{Options{Preset: "sdxl-tiny", Inpaint: true}, "ORTStableDiffusionXLInpaintPipeline", "EulerDiscreteScheduler", "leading", 4, 5},
		{Options{Preset: "sdxl-tiny", Turbo: true}, "ORTStableDiffusionXLPipeline", "EulerAncestralDiscreteScheduler", "trailing", 1, 0},
	} {
		dir := filepath.Join(t.TempDir(), "m")
		rep, err := Write(context.Background(), dir, tc.opts, nil)
		if err != nil {
			t.Fatal(err)
		}
		names := map[string]bool{}
		for _, n := range rep.Networks {
			names[n.Name] = true
		}
		if !names["text_encoder_2"] || !names["unet"] {
			t.Errorf("%+v: networks %v lack text_encoder_2", tc.opts, rep.Networks)
		}
		var index struct {
			Class      string `json:"_class_name"`
			ForceZeros bool   `json:"force_zeros_for_empty_prompt"`
		}
		var sched struct {
			Class   string `json:"_class_name"`
			Spacing string `json:"timestep_spacing"`
		}
		var man Manifest
		var vae struct {
			Scale float64 `json:"scaling_factor"`
		}
		for path, v := range map[string]any{
			"model_index.json": &index, "scheduler/scheduler_config.json": &sched,
			ManifestFile: &man, "vae_decoder/config.json": &vae,
		} {
			data, err := os.ReadFile(filepath.Join(dir, path))
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(data, v); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
		}
		if index.Class != tc.class || !index.ForceZeros {
			t.Errorf("%+v: model_index %+v", tc.opts, index)
		}
		if sched.Class != tc.scheduler || sched.Spacing != tc.spacing {
			t.Errorf("%+v: scheduler %+v, want %s %s", tc.opts, sched, tc.scheduler, tc.spacing)
		}
		if man.DefaultSteps != tc.steps || man.DefaultGuidance != tc.guidance {
			t.Errorf("%+v: manifest steps %d guidance %v", tc.opts, man.DefaultSteps, man.DefaultGuidance)
		}
		if vae.Scale != 0.13025 {
			t.Errorf("%+v: VAE scaling factor %v", tc.opts, vae.Scale)
		}
		if _, err := os.Stat(filepath.Join(dir, "tokenizer_2", "vocab.json")); err != nil {
			t.Error(err)
		}
	}
	if Family("sdxl-tiny") != FamilySDXL || Family("sdxl") != FamilySDXL {
		t.Error("sdxl presets are not the sdxl family")
	}
}

func TestSDXLOptionConflicts(t *testing.T) {
	for _, o := range []Options{{Preset: "sdxl-tiny", LCM: true}, {Preset: "tiny", LCM: true, Turbo: true}} {
		if _, _, err := o.resolve(); err == nil {
			t.Errorf("%+v accepted", o)
		}
	}
	_, p, err := Options{Preset: "sdxl", Turbo: true}.resolve()
	if err != nil || p.width != 512 || p.steps != 1 || p.guidance != 0 {
		t.Errorf("sdxl turbo: %v, %dx%d, %d steps, guidance %v; want SDXL-Turbo's 512x512, 1, 0", err, p.width, p.height, p.steps, p.guidance)
	}
}
