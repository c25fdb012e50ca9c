package synth

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
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

// TestTinySD2Runs writes the SD 2 layout and runs its networks; its
// folder pads with "!" and predicts v.
func TestTinySD2Runs(t *testing.T) {
	needORT(t)
	for _, fp16 := range []bool{false, true} {
		opts := Options{Preset: "tiny-sd2", FP16: fp16}
		dir := filepath.Join(t.TempDir(), "m")
		if _, err := Write(context.Background(), dir, opts, nil); err != nil {
			t.Fatal(err)
		}
		context := runTextEncoder(t, dir, opts)
		runUNet(t, dir, opts, context, 8, 8)
		runVAEDecoder(t, dir, opts, 8, 8)

		var sched struct {
			PredictionType string `json:"prediction_type"`
		}
		readJSON(t, filepath.Join(dir, "scheduler", "scheduler_config.json"), &sched)
		if sched.PredictionType != "v_prediction" {
			t.Errorf("prediction_type %q", sched.PredictionType)
		}
		tok, err := os.ReadFile(filepath.Join(dir, "tokenizer", "special_tokens_map.json"))
		if err != nil {
			t.Fatal(err)
		}
		var special map[string]any
		if err := json.Unmarshal(tok, &special); err != nil {
			t.Fatal(err)
		}
		if pad, _ := json.Marshal(special["pad_token"]); !json.Valid(pad) || string(pad) == `"<|endoftext|>"` {
			t.Errorf("pad token %s, want SD 2's !", pad)
		}
	}
	if Family("tiny-sd2") != FamilySD2 || Family("tiny") != FamilySD1 || Family("nope") != "" {
		t.Error("Family")
	}
	if _, err := Write(context.Background(), filepath.Join(t.TempDir(), "x"), Options{Preset: "tiny", Prediction: "x0"}, nil); err == nil {
		t.Error("bad prediction accepted")
	}
}
