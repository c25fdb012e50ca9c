package convert

import (
	"fmt"
	"strconv"
	"strings"
)

// The LDM (CompVis / Stability) key layout of single-file checkpoints,
// mapped from the diffusers / transformers state-dict names the graphs
// use. The rules are those of diffusers' single-file conversion, written
// here in the other direction: the graph asks for a diffusers name and
// gets the checkpoint key (and how to reshape it) that holds it.

// Checkpoint key prefixes of the three networks.
const (
	unetPrefix = "model.diffusion_model."
	vaePrefix  = "first_stage_model."
	sd1Text    = "cond_stage_model.transformer."
	sd2Text    = "cond_stage_model.model."
	emaPrefix  = "model_ema."
	// SDXL's conditioner: CLIP ViT-L (transformers' names) and OpenCLIP
	// ViT-bigG (OpenCLIP's names, with its text projection).
	sdxlText1 = "conditioner.embedders.0.transformer."
	sdxlText2 = "conditioner.embedders.1.model."
	// sdxlRefiner is where the refiner keeps its only encoder, OpenCLIP bigG.
	sdxlRefiner = "conditioner.embedders.0.model."
)

// source says where a diffusers tensor lives in the checkpoint.
type source struct {
	key string
	// part >= 0 takes the part-th third of the first axis (OpenCLIP packs
	// q, k and v in one in_proj tensor); -1 takes the whole tensor.
	part int
	// conv1x1: the checkpoint stores a linear weight as a 1x1 convolution
	// [out, in, 1, 1] (the VAE's attention); the graph wants [out, in].
	conv1x1 bool
	// transpose: the checkpoint stores the matrix the other way round
	// (OpenCLIP's text_projection is [width, proj], used as x·P; the
	// graph wants the Linear weight [proj, width]).
	transpose bool
}

// unetLayout is what the name map must know of a UNet's shape.
type unetLayout struct {
	layers int          // ResNets per down level (up levels have one more)
	upAttn map[int]bool // up levels whose blocks have attentions
}

// unetSource maps a diffusers UNet name to its LDM key (without prefix).
func unetSource(name string, l unetLayout) (string, error) {
	p := strings.Split(name, ".")
	bad := fmt.Errorf("%w: unet %q has no LDM name", ErrMapping, name)
	num := func(i int) (int, bool) {
		if i >= len(p) {
			return 0, false
		}
		n, err := strconv.Atoi(p[i])
		return n, err == nil && n >= 0
	}
	rest := func(from int) string { return strings.Join(p[from:], ".") }
	switch p[0] {
	case "time_embedding":
		if len(p) == 3 && p[1] == "linear_1" {
			return "time_embed.0." + p[2], nil
		}
		if len(p) == 3 && p[1] == "linear_2" {
			return "time_embed.2." + p[2], nil
		}
	case "add_embedding": // SDXL's text_time embedding, LDM's label_emb
		if len(p) == 3 && p[1] == "linear_1" {
			return "label_emb.0.0." + p[2], nil
		}
		if len(p) == 3 && p[1] == "linear_2" {
			return "label_emb.0.2." + p[2], nil
		}
	case "conv_in":
		return "input_blocks.0.0." + rest(1), nil
	case "conv_norm_out":
		return "out.0." + rest(1), nil
	case "conv_out":
		return "out.2." + rest(1), nil
	case "mid_block":
		j, ok := num(2)
		switch {
		case ok && p[1] == "resnets" && j < 2 && len(p) > 3:
			return fmt.Sprintf("middle_block.%d.%s", 2*j, resnetToLDM(rest(3))), nil
		case ok && p[1] == "attentions" && j == 0 && len(p) > 3:
			return "middle_block.1." + rest(3), nil
		}
	case "down_blocks", "up_blocks":
		i, ok1 := num(1)
		j, ok2 := num(3)
		if !ok1 || !ok2 || len(p) < 5 {
			break
		}
		down := p[0] == "down_blocks"
		per := l.layers + 1 // LDM blocks per level: the ResNets and a resampler (down), or ResNets (up)
		switch p[2] {
		case "resnets":
			if down {
				return fmt.Sprintf("input_blocks.%d.0.%s", 1+i*per+j, resnetToLDM(rest(4))), nil
			}
			return fmt.Sprintf("output_blocks.%d.0.%s", i*per+j, resnetToLDM(rest(4))), nil
		case "attentions":
			if down {
				return fmt.Sprintf("input_blocks.%d.1.%s", 1+i*per+j, rest(4)), nil
			}
			return fmt.Sprintf("output_blocks.%d.1.%s", i*per+j, rest(4)), nil
		case "downsamplers":
			if down && j == 0 && p[4] == "conv" && len(p) == 6 {
				return fmt.Sprintf("input_blocks.%d.0.op.%s", 1+i*per+l.layers, p[5]), nil
			}
		case "upsamplers":
			if !down && j == 0 && p[4] == "conv" && len(p) == 6 {
				slot := 1 // after the ResNet, or after its attention when the level has them
				if l.upAttn[i] {
					slot = 2
				}
				return fmt.Sprintf("output_blocks.%d.%d.conv.%s", i*per+l.layers, slot, p[5]), nil
			}
		}
	}
	return "", bad
}

// resnetToLDM renames the inside of a diffusers ResnetBlock2D to LDM's ResBlock.
func resnetToLDM(s string) string {
	for _, r := range [][2]string{
		{"norm1.", "in_layers.0."}, {"conv1.", "in_layers.2."},
		{"time_emb_proj.", "emb_layers.1."},
		{"norm2.", "out_layers.0."}, {"conv2.", "out_layers.3."},
		{"conv_shortcut.", "skip_connection."},
	} {
		if strings.HasPrefix(s, r[0]) {
			return r[1] + strings.TrimPrefix(s, r[0])
		}
	}
	return s
}

// vaeSource maps a diffusers AutoencoderKL name to its LDM key (without
// prefix). levels is the number of decoder levels (LDM numbers them in
// the other order).
func vaeSource(name string, levels int) (source, error) {
	p := strings.Split(name, ".")
	bad := fmt.Errorf("%w: vae %q has no LDM name", ErrMapping, name)
	if len(p) == 2 && (p[0] == "quant_conv" || p[0] == "post_quant_conv") {
		return source{key: name, part: -1}, nil
	}
	if len(p) < 3 || (p[0] != "encoder" && p[0] != "decoder") {
		return source{}, bad
	}
	half := p[0] + "."
	num := func(i int) (int, bool) {
		if i >= len(p) {
			return 0, false
		}
		n, err := strconv.Atoi(p[i])
		return n, err == nil && n >= 0
	}
	rest := func(from int) string { return strings.Join(p[from:], ".") }
	resnet := func(s string) string {
		if strings.HasPrefix(s, "conv_shortcut.") {
			return "nin_shortcut." + strings.TrimPrefix(s, "conv_shortcut.")
		}
		return s
	}
	switch p[1] {
	case "conv_in", "conv_out":
		return source{key: half + rest(1), part: -1}, nil
	case "conv_norm_out":
		return source{key: half + "norm_out." + rest(2), part: -1}, nil
	case "mid_block":
		j, ok := num(3)
		switch {
		case ok && p[2] == "resnets" && j < 2 && len(p) > 4:
			return source{key: fmt.Sprintf("%smid.block_%d.%s", half, j+1, resnet(rest(4))), part: -1}, nil
		case ok && p[2] == "attentions" && j == 0 && len(p) > 4:
			return vaeAttnSource(half+"mid.attn_1.", rest(4))
		}
	case "down_blocks", "up_blocks":
		i, ok1 := num(2)
		j, ok2 := num(4)
		if !ok1 || !ok2 || len(p) < 6 {
			break
		}
		level, verb := i, "down"
		if p[1] == "up_blocks" {
			if i >= levels {
				break
			}
			level, verb = levels-1-i, "up"
		}
		switch {
		case p[3] == "resnets":
			return source{key: fmt.Sprintf("%s%s.%d.block.%d.%s", half, verb, level, j, resnet(rest(5))), part: -1}, nil
		case p[3] == "downsamplers" && verb == "down" && j == 0 && p[5] == "conv" && len(p) == 7:
			return source{key: fmt.Sprintf("%sdown.%d.downsample.conv.%s", half, level, p[6]), part: -1}, nil
		case p[3] == "upsamplers" && verb == "up" && j == 0 && p[5] == "conv" && len(p) == 7:
			return source{key: fmt.Sprintf("%sup.%d.upsample.conv.%s", half, level, p[6]), part: -1}, nil
		}
	}
	return source{}, bad
}

// vaeAttnSource maps the VAE attention's inside: group_norm -> norm,
// to_q/k/v -> q/k/v, to_out.0 -> proj_out, whose weights are 1x1 convs.
func vaeAttnSource(prefix, s string) (source, error) {
	p := strings.Split(s, ".")
	param := p[len(p)-1]
	mod := strings.Join(p[:len(p)-1], ".")
	ldm, ok := map[string]string{
		"group_norm": "norm", "to_q": "q", "to_k": "k", "to_v": "v", "to_out.0": "proj_out",
	}[mod]
	if !ok || (param != "weight" && param != "bias") {
		return source{}, fmt.Errorf("%w: vae attention %q has no LDM name", ErrMapping, s)
	}
	return source{key: prefix + ldm + "." + param, part: -1, conv1x1: ldm != "norm" && param == "weight"}, nil
}

// openCLIPSource maps a transformers CLIPTextModel(WithProjection) name to
// OpenCLIP's key (without prefix), as SD 2 and SDXL's second encoder store
// it: the layers' q, k and v are thirds of in_proj, and the projection is
// kept transposed.
func openCLIPSource(name string) (source, error) {
	bad := fmt.Errorf("%w: text encoder %q has no OpenCLIP name", ErrMapping, name)
	if name == "text_projection.weight" {
		return source{key: "text_projection", part: -1, transpose: true}, nil
	}
	s, ok := strings.CutPrefix(name, "text_model.")
	if !ok {
		return source{}, bad
	}
	switch s {
	case "embeddings.token_embedding.weight":
		return source{key: "token_embedding.weight", part: -1}, nil
	case "embeddings.position_embedding.weight":
		return source{key: "positional_embedding", part: -1}, nil
	case "final_layer_norm.weight", "final_layer_norm.bias":
		return source{key: "ln_final." + strings.TrimPrefix(s, "final_layer_norm."), part: -1}, nil
	}
	p := strings.Split(s, ".")
	if len(p) < 5 || p[0] != "encoder" || p[1] != "layers" {
		return source{}, bad
	}
	if _, err := strconv.Atoi(p[2]); err != nil {
		return source{}, bad
	}
	block := "transformer.resblocks." + p[2] + "."
	mod, param := strings.Join(p[3:len(p)-1], "."), p[len(p)-1]
	switch mod {
	case "layer_norm1":
		return source{key: block + "ln_1." + param, part: -1}, nil
	case "layer_norm2":
		return source{key: block + "ln_2." + param, part: -1}, nil
	case "mlp.fc1":
		return source{key: block + "mlp.c_fc." + param, part: -1}, nil
	case "mlp.fc2":
		return source{key: block + "mlp.c_proj." + param, part: -1}, nil
	case "self_attn.out_proj":
		return source{key: block + "attn.out_proj." + param, part: -1}, nil
	case "self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj":
		part := strings.Index("qkv", mod[len("self_attn."):][:1])
		return source{key: block + "attn.in_proj_" + param, part: part}, nil
	}
	return source{}, bad
}
