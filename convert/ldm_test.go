package convert

import (
	"errors"
	"testing"
)

// sd15 is SD 1.5's UNet layout: two ResNets a level, no attention in the
// deepest level (up level 0).
var sd15 = unetLayout{layers: 2, upAttn: map[int]bool{1: true, 2: true, 3: true}}

func TestUNetNames(t *testing.T) {
	// Keys as they appear in v1-5-pruned.safetensors.
	for name, want := range map[string]string{
		"conv_in.weight":                                                     "input_blocks.0.0.weight",
		"time_embedding.linear_1.weight":                                     "time_embed.0.weight",
		"time_embedding.linear_2.bias":                                       "time_embed.2.bias",
		"down_blocks.0.resnets.1.norm1.weight":                               "input_blocks.2.0.in_layers.0.weight",
		"down_blocks.0.downsamplers.0.conv.weight":                           "input_blocks.3.0.op.weight",
		"down_blocks.1.resnets.0.conv1.weight":                               "input_blocks.4.0.in_layers.2.weight",
		"down_blocks.1.resnets.0.conv_shortcut.weight":                       "input_blocks.4.0.skip_connection.weight",
		"down_blocks.1.attentions.1.proj_in.weight":                          "input_blocks.5.1.proj_in.weight",
		"down_blocks.3.resnets.1.time_emb_proj.bias":                         "input_blocks.11.0.emb_layers.1.bias",
		"mid_block.resnets.0.norm2.weight":                                   "middle_block.0.out_layers.0.weight",
		"mid_block.attentions.0.transformer_blocks.0.attn1.to_q.weight":      "middle_block.1.transformer_blocks.0.attn1.to_q.weight",
		"mid_block.resnets.1.conv2.bias":                                     "middle_block.2.out_layers.3.bias",
		"up_blocks.0.resnets.2.conv1.weight":                                 "output_blocks.2.0.in_layers.2.weight",
		"up_blocks.0.upsamplers.0.conv.weight":                               "output_blocks.2.1.conv.weight",
		"up_blocks.1.attentions.0.transformer_blocks.0.ff.net.0.proj.weight": "output_blocks.3.1.transformer_blocks.0.ff.net.0.proj.weight",
		"up_blocks.1.upsamplers.0.conv.bias":                                 "output_blocks.5.2.conv.bias",
		"up_blocks.2.upsamplers.0.conv.weight":                               "output_blocks.8.2.conv.weight",
		"up_blocks.3.attentions.2.proj_out.weight":                           "output_blocks.11.1.proj_out.weight",
		"conv_norm_out.weight":                                               "out.0.weight",
		"conv_out.bias":                                                      "out.2.bias",
	} {
		got, err := unetSource(name, sd15)
		if err != nil || got != want {
			t.Errorf("%s -> %q, %v; want %q", name, got, err, want)
		}
	}
	for _, name := range []string{"time_embedding.cond_proj.weight", "down_blocks.x.resnets.0.conv1.weight", "add_embedding.linear_1", "mid_block.resnets.2.conv1.weight", "up_blocks.1.downsamplers.0.conv.weight"} {
		if got, err := unetSource(name, sd15); !errors.Is(err, ErrMapping) {
			t.Errorf("%s -> %q, %v; want ErrMapping", name, got, err)
		}
	}
}

func TestVAENames(t *testing.T) {
	for name, want := range map[string]source{
		"quant_conv.weight":      {key: "quant_conv.weight", part: -1},
		"encoder.conv_in.weight": {key: "encoder.conv_in.weight", part: -1},
		"encoder.down_blocks.1.resnets.0.conv_shortcut.weight": {key: "encoder.down.1.block.0.nin_shortcut.weight", part: -1},
		"encoder.down_blocks.2.downsamplers.0.conv.bias":       {key: "encoder.down.2.downsample.conv.bias", part: -1},
		"encoder.mid_block.resnets.1.norm1.weight":             {key: "encoder.mid.block_2.norm1.weight", part: -1},
		"encoder.mid_block.attentions.0.group_norm.bias":       {key: "encoder.mid.attn_1.norm.bias", part: -1},
		"encoder.mid_block.attentions.0.to_q.weight":           {key: "encoder.mid.attn_1.q.weight", part: -1, conv1x1: true},
		"decoder.mid_block.attentions.0.to_out.0.weight":       {key: "decoder.mid.attn_1.proj_out.weight", part: -1, conv1x1: true},
		"decoder.mid_block.attentions.0.to_v.bias":             {key: "decoder.mid.attn_1.v.bias", part: -1},
		"decoder.up_blocks.0.resnets.2.conv2.weight":           {key: "decoder.up.3.block.2.conv2.weight", part: -1},
		"decoder.up_blocks.2.upsamplers.0.conv.weight":         {key: "decoder.up.1.upsample.conv.weight", part: -1},
		"decoder.up_blocks.3.resnets.0.conv_shortcut.bias":     {key: "decoder.up.0.block.0.nin_shortcut.bias", part: -1},
		"decoder.conv_norm_out.weight":                         {key: "decoder.norm_out.weight", part: -1},
	} {
		got, err := vaeSource(name, 4)
		if err != nil || got != want {
			t.Errorf("%s -> %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, name := range []string{"decoder.up_blocks.4.resnets.0.conv1.weight", "encoder.mid_block.attentions.0.to_x.weight", "post_quant_conv"} {
		if _, err := vaeSource(name, 4); !errors.Is(err, ErrMapping) {
			t.Errorf("%s: %v, want ErrMapping", name, err)
		}
	}
}

func TestOpenCLIPNames(t *testing.T) {
	for name, want := range map[string]source{
		"text_model.embeddings.token_embedding.weight":          {key: "token_embedding.weight", part: -1},
		"text_model.embeddings.position_embedding.weight":       {key: "positional_embedding", part: -1},
		"text_model.final_layer_norm.bias":                      {key: "ln_final.bias", part: -1},
		"text_model.encoder.layers.3.layer_norm1.weight":        {key: "transformer.resblocks.3.ln_1.weight", part: -1},
		"text_model.encoder.layers.3.mlp.fc2.bias":              {key: "transformer.resblocks.3.mlp.c_proj.bias", part: -1},
		"text_model.encoder.layers.0.self_attn.q_proj.weight":   {key: "transformer.resblocks.0.attn.in_proj_weight", part: 0},
		"text_model.encoder.layers.0.self_attn.k_proj.bias":     {key: "transformer.resblocks.0.attn.in_proj_bias", part: 1},
		"text_model.encoder.layers.22.self_attn.v_proj.weight":  {key: "transformer.resblocks.22.attn.in_proj_weight", part: 2},
		"text_model.encoder.layers.1.self_attn.out_proj.weight": {key: "transformer.resblocks.1.attn.out_proj.weight", part: -1},
		"text_projection.weight":                                {key: "text_projection", part: -1, transpose: true},
	} {
		got, err := openCLIPSource(name)
		if err != nil || got != want {
			t.Errorf("%s -> %+v, %v; want %+v", name, got, err, want)
		}
	}
	for _, name := range []string{"text_projection.bias", "text_model.encoder.layers.x.mlp.fc1.weight", "text_model.encoder.layers.0.self_attn.w_proj.weight"} {
		if _, err := openCLIPSource(name); !errors.Is(err, ErrMapping) {
			t.Errorf("%s: %v, want ErrMapping", name, err)
		}
	}
}

func TestEMAKey(t *testing.T) {
	if got := emaKey("model.diffusion_model.input_blocks.0.0.weight"); got != "model_ema.diffusion_modelinput_blocks00weight" {
		t.Errorf("ema key %q", got)
	}
}
