package convert_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

func unetModules(t *testing.T, preset string) []string {
	t.Helper()
	params, err := synth.Params(synth.Options{Preset: preset})
	if err != nil {
		t.Fatal(err)
	}
	var mods []string
	for _, p := range params {
		if m, ok := strings.CutSuffix(p.Name, ".weight"); ok && p.Net == "unet" {
			mods = append(mods, m)
		}
	}
	return mods
}

// TestLDMUNetModulesSDXL: SDXL base's module names come back from their
// SGM names as kohya's SDXL LoRAs spell them.
func TestLDMUNetModulesSDXL(t *testing.T) {
	names, err := convert.LDMUNetModules(unetModules(t, "sdxl"))
	if err != nil {
		t.Fatal(err)
	}
	for ldm, want := range map[string]string{
		"input_blocks.4.1.transformer_blocks.0.attn1.to_q": "down_blocks.1.attentions.0.transformer_blocks.0.attn1.to_q",
		"input_blocks.8.1.transformer_blocks.9.attn2.to_k": "down_blocks.2.attentions.1.transformer_blocks.9.attn2.to_k",
		"input_blocks.3.0.op":                              "down_blocks.0.downsamplers.0.conv",
		"input_blocks.1.0.in_layers.2":                     "down_blocks.0.resnets.0.conv1",
		"input_blocks.4.0.skip_connection":                 "down_blocks.1.resnets.0.conv_shortcut",
		"middle_block.1.transformer_blocks.9.ff.net.2":     "mid_block.attentions.0.transformer_blocks.9.ff.net.2",
		"middle_block.2.emb_layers.1":                      "mid_block.resnets.1.time_emb_proj",
		"output_blocks.0.1.proj_in":                        "up_blocks.0.attentions.0.proj_in",
		"output_blocks.2.2.conv":                           "up_blocks.0.upsamplers.0.conv",
		"output_blocks.5.2.conv":                           "up_blocks.1.upsamplers.0.conv",
		"output_blocks.8.0.out_layers.3":                   "up_blocks.2.resnets.2.conv2",
		"label_emb.0.0":                                    "add_embedding.linear_1",
		"time_embed.2":                                     "time_embedding.linear_2",
		"out.2":                                            "conv_out",
	} {
		if got := names[ldm]; got != want {
			t.Errorf("%s -> %q, want %q", ldm, got, want)
		}
	}
}

// TestLDMUNetModulesMatchWriter: for SD 1.x the inverse map names exactly
// the UNet keys the checkpoint writer writes.
func TestLDMUNetModulesMatchWriter(t *testing.T) {
	mods := unetModules(t, "tiny")
	names, err := convert.LDMUNetModules(mods)
	if err != nil {
		t.Fatal(err)
	}
	if len(names) != len(mods) {
		t.Errorf("%d LDM names for %d modules", len(names), len(mods))
	}
	f, err := safetensors.Open(writeLDM(t, synth.Options{Preset: "tiny"}, safetensors.F32))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for ldm := range names {
		if _, ok := f.Info("model.diffusion_model." + ldm + ".weight"); !ok {
			t.Errorf("%s: not a key of the written checkpoint", ldm)
		}
	}
	if _, err := convert.LDMUNetModules([]string{"conv_in", "mid_block.attentions.0.proj_in"}); !errors.Is(err, convert.ErrMapping) {
		t.Errorf("modules without down-block ResNets: %v, want ErrMapping", err)
	}
}

// FuzzLDMUNetModules: module names come from ONNX node names (files a user
// downloaded); none panics the map, and every name it returns maps back
// to a module it was given.
func FuzzLDMUNetModules(f *testing.F) {
	f.Add("down_blocks.0.resnets.0.conv1\nup_blocks.1.attentions.0.proj_in\nmid_block.resnets.1.time_emb_proj")
	f.Add("down_blocks.0.resnets.7\ndown_blocks.x.resnets.0.conv1\nmid_block\nup_blocks.0.upsamplers.0.conv\nadd_embedding.linear_1")
	f.Add("down_blocks.0.resnets.0.a\n\n..\ndown_blocks.0.downsamplers.0.conv")
	f.Fuzz(func(t *testing.T, s string) {
		mods := strings.Split(s, "\n")
		names, err := convert.LDMUNetModules(mods)
		if err != nil {
			return
		}
		given := map[string]bool{}
		for _, m := range mods {
			given[m] = true
		}
		for ldm, m := range names {
			if !given[m] {
				t.Fatalf("%q -> %q, not a module given", ldm, m)
			}
		}
	})
}
