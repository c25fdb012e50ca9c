package convert

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// sdxlBase is SDXL base 1.0's UNet layout: two ResNets a level, no
// attention on the first down level (the last up level).
var sdxlBase = unetLayout{layers: 2, upAttn: map[int]bool{0: true, 1: true}}

func TestSDXLUNetNames(t *testing.T) {
	// Keys as they appear in sd_xl_base_1.0.safetensors.
	for name, want := range map[string]string{
		"add_embedding.linear_1.weight":                                     "label_emb.0.0.weight",
		"add_embedding.linear_2.bias":                                       "label_emb.0.2.bias",
		"down_blocks.0.resnets.1.conv2.weight":                              "input_blocks.2.0.out_layers.3.weight",
		"down_blocks.0.downsamplers.0.conv.weight":                          "input_blocks.3.0.op.weight",
		"down_blocks.1.attentions.0.transformer_blocks.1.attn2.to_k.weight": "input_blocks.4.1.transformer_blocks.1.attn2.to_k.weight",
		"down_blocks.1.downsamplers.0.conv.bias":                            "input_blocks.6.0.op.bias",
		"down_blocks.2.attentions.1.transformer_blocks.9.ff.net.2.weight":   "input_blocks.8.1.transformer_blocks.9.ff.net.2.weight",
		"mid_block.attentions.0.transformer_blocks.9.norm3.bias":            "middle_block.1.transformer_blocks.9.norm3.bias",
		"up_blocks.0.attentions.2.proj_out.weight":                          "output_blocks.2.1.proj_out.weight",
		"up_blocks.0.upsamplers.0.conv.weight":                              "output_blocks.2.2.conv.weight",
		"up_blocks.1.upsamplers.0.conv.bias":                                "output_blocks.5.2.conv.bias",
		"up_blocks.2.resnets.2.conv_shortcut.weight":                        "output_blocks.8.0.skip_connection.weight",
	} {
		got, err := unetSource(name, sdxlBase)
		if err != nil || got != want {
			t.Errorf("%s -> %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"add_embedding.linear_3.weight", "add_embedding.weight", "add_embedding.linear_1.weight.x"} {
		if got, err := unetSource(name, sdxlBase); !errors.Is(err, ErrMapping) {
			t.Errorf("%s -> %q, %v; want ErrMapping", name, got, err)
		}
	}
}

// TestSDXLPublishedKeys: the sdxl preset (SDXL base 1.0's shapes) written
// as a checkpoint has the keys and shapes of the published
// sd_xl_base_1.0.safetensors. Nothing is drawn: only names and shapes.
func TestSDXLPublishedKeys(t *testing.T) {
	params, err := synth.Params(synth.Options{Preset: "sdxl", FP16: true})
	if err != nil {
		t.Fatal(err)
	}
	tensors := make([]Tensor, len(params))
	for i, p := range params {
		tensors[i] = Tensor{Net: p.Net, Name: p.Name, Shape: p.Shape, Values: p.Values}
	}
	entries, err := ldmEntries(tensors, WriteOptions{DType: safetensors.F16, Family: FamilySDXL})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][]int64{}
	count := map[string]int{}
	for _, e := range entries {
		if _, dup := got[e.Name]; dup {
			t.Errorf("key %s written twice", e.Name)
		}
		got[e.Name] = e.Shape
		prefix := ""
		for _, p := range []string{unetPrefix, vaePrefix, sdxlText1, sdxlText2} {
			if strings.HasPrefix(e.Name, p) {
				prefix = p
			}
		}
		if prefix == "" {
			t.Errorf("key %s outside the four networks", e.Name)
		}
		count[prefix]++
	}
	for key, shape := range map[string][]int64{
		"model.diffusion_model.label_emb.0.0.weight":                                       {1280, 2816},
		"model.diffusion_model.label_emb.0.2.weight":                                       {1280, 1280},
		"model.diffusion_model.time_embed.0.weight":                                        {1280, 320},
		"model.diffusion_model.input_blocks.0.0.weight":                                    {320, 4, 3, 3},
		"model.diffusion_model.input_blocks.3.0.op.weight":                                 {320, 320, 3, 3},
		"model.diffusion_model.input_blocks.4.0.skip_connection.weight":                    {640, 320, 1, 1},
		"model.diffusion_model.input_blocks.4.1.proj_in.weight":                            {640, 640},
		"model.diffusion_model.input_blocks.5.1.transformer_blocks.1.attn2.to_k.weight":    {640, 2048},
		"model.diffusion_model.input_blocks.6.0.op.weight":                                 {640, 640, 3, 3},
		"model.diffusion_model.input_blocks.8.1.transformer_blocks.9.ff.net.0.proj.weight": {10240, 1280},
		"model.diffusion_model.middle_block.1.transformer_blocks.9.attn1.to_out.0.weight":  {1280, 1280},
		"model.diffusion_model.middle_block.2.emb_layers.1.weight":                         {1280, 1280},
		"model.diffusion_model.output_blocks.0.0.skip_connection.weight":                   {1280, 2560, 1, 1},
		"model.diffusion_model.output_blocks.2.2.conv.weight":                              {1280, 1280, 3, 3},
		"model.diffusion_model.output_blocks.3.1.transformer_blocks.1.norm2.weight":        {640},
		"model.diffusion_model.output_blocks.5.2.conv.weight":                              {640, 640, 3, 3},
		"model.diffusion_model.output_blocks.8.0.skip_connection.weight":                   {320, 640, 1, 1},
		"model.diffusion_model.out.2.weight":                                               {4, 320, 3, 3},
		"conditioner.embedders.0.transformer.text_model.encoder.layers.11.mlp.fc1.weight":  {3072, 768},
		"conditioner.embedders.0.transformer.text_model.final_layer_norm.weight":           {768},
		"conditioner.embedders.1.model.positional_embedding":                               {77, 1280},
		"conditioner.embedders.1.model.transformer.resblocks.0.attn.in_proj_bias":          {3840},
		"conditioner.embedders.1.model.transformer.resblocks.31.attn.in_proj_weight":       {3840, 1280},
		"conditioner.embedders.1.model.transformer.resblocks.31.attn.out_proj.weight":      {1280, 1280},
		"conditioner.embedders.1.model.transformer.resblocks.0.mlp.c_fc.weight":            {5120, 1280},
		"conditioner.embedders.1.model.ln_final.bias":                                      {1280},
		"conditioner.embedders.1.model.text_projection":                                    {1280, 1280},
		"first_stage_model.encoder.mid.attn_1.q.weight":                                    {512, 512, 1, 1},
		"first_stage_model.decoder.up.0.block.0.nin_shortcut.weight":                       {128, 256, 1, 1},
		"first_stage_model.quant_conv.weight":                                              {8, 8, 1, 1},
	} {
		if s, ok := got[key]; !ok || !slices.Equal(s, shape) {
			t.Errorf("%s: %v (present %v), want %v", key, s, ok, shape)
		}
	}
	// OpenCLIP bigG: 32 blocks of 12 tensors, the embeddings, the final
	// norm and the projection (the published file adds logit_scale).
	if count[sdxlText2] != 32*12+5 {
		t.Errorf("%d OpenCLIP tensors, want %d", count[sdxlText2], 32*12+5)
	}
	// CLIP ViT-L: 12 layers of 16 tensors, two embeddings, the final norm.
	if count[sdxlText1] != 12*16+4 {
		t.Errorf("%d CLIP tensors, want %d", count[sdxlText1], 12*16+4)
	}
}
