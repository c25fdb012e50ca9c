package synth

// vaeConfig is the shape of an AutoencoderKL.
type vaeConfig struct {
	channels []int64 // block_out_channels; 4 levels give the 8x scale
	layers   int     // ResNets per encoder level (decoder levels have one more)
	groups   int64
}

const (
	latentChannels = 4
	vaeEps         = 1e-6
)

// vaeAttention is the VAE's single-head self-attention over all pixels.
func (b *builder) vaeAttention(x, name string, c int64, groups int64) string {
	shape := b.op("Shape", []string{x})
	h := b.toTokens(b.groupNorm(x, name+".group_norm", c, groups, vaeEps), c)
	h = b.attention(h, h, attnSpec{
		q: name + ".to_q", k: name + ".to_k", v: name + ".to_v", out: name + ".to_out.0",
		dim: c, ctxDim: c, heads: 1, qkvBias: true,
	})
	return b.op("Add", []string{b.fromTokens(h, shape), x})
}

// vaeMid is the middle block both halves share: ResNet, attention, ResNet.
func (b *builder) vaeMid(h, prefix string, c int64, n norms) string {
	h = b.resnet(h, "", prefix+".mid_block.resnets.0", c, c, n)
	h = b.vaeAttention(h, prefix+".mid_block.attentions.0", c, n.groups)
	return b.resnet(h, "", prefix+".mid_block.resnets.1", c, c, n)
}

// buildVAEDecoder writes latents [b, 4, h, w] -> image [b, 3, 8h, 8w] in
// [-1, 1] (for a trained model). The 0.18215 scale stays outside, as in
// every export.
func buildVAEDecoder(cfg vaeConfig, o netOptions) *graph {
	b := newNetBuilder("vae_decoder", o)
	n := norms{groups: cfg.groups, eps: vaeEps}
	z := b.input("latent_sample", o.float, sym("batch"), fixed(latentChannels), sym("latent_height"), sym("latent_width"))
	h := b.conv(z, "post_quant_conv", latentChannels, latentChannels, 1, 1)

	last := len(cfg.channels) - 1
	cur := cfg.channels[last]
	h = b.conv(h, "decoder.conv_in", latentChannels, cur, 3, 1)
	h = b.vaeMid(h, "decoder", cur, n)
	for i := range cfg.channels {
		ch := cfg.channels[last-i]
		for j := range cfg.layers + 1 {
			h = b.resnet(h, "", join("decoder.up_blocks", i, "resnets", j), cur, ch, n)
			cur = ch
		}
		if i != last {
			h = b.upsample(h, join("decoder.up_blocks", i, "upsamplers.0.conv"), ch)
		}
	}
	h = b.silu(b.groupNorm(h, "decoder.conv_norm_out", cur, cfg.groups, vaeEps))
	h = b.conv(h, "decoder.conv_out", cur, 3, 3, 1)
	b.output(h, "sample", o.float, sym("batch"), fixed(3), sym("height"), sym("width"))
	return b.g
}

// buildVAEEncoder writes image [b, 3, H, W] -> latent_sample [b, 4, H/8,
// W/8] (the distribution's mean: a graph has no business drawing noise) or,
// with parameters, latent_parameters [b, 8, H/8, W/8] = mean and logvar.
func buildVAEEncoder(cfg vaeConfig, o netOptions, parameters bool) *graph {
	b := newNetBuilder("vae_encoder", o)
	n := norms{groups: cfg.groups, eps: vaeEps}
	x := b.input("sample", o.float, sym("batch"), fixed(3), sym("height"), sym("width"))

	cur := cfg.channels[0]
	h := b.conv(x, "encoder.conv_in", 3, cur, 3, 1)
	last := len(cfg.channels) - 1
	for i, ch := range cfg.channels {
		for j := range cfg.layers {
			h = b.resnet(h, "", join("encoder.down_blocks", i, "resnets", j), cur, ch, n)
			cur = ch
		}
		if i != last {
			// diffusers pads right and bottom only, then convolves with stride 2.
			h = b.convPads(h, join("encoder.down_blocks", i, "downsamplers.0.conv"), ch, ch, 3, 2, [4]int64{0, 0, 1, 1})
		}
	}
	h = b.vaeMid(h, "encoder", cur, n)
	h = b.silu(b.groupNorm(h, "encoder.conv_norm_out", cur, cfg.groups, vaeEps))
	h = b.conv(h, "encoder.conv_out", cur, 2*latentChannels, 3, 1)
	h = b.conv(h, "quant_conv", 2*latentChannels, 2*latentChannels, 1, 1)

	if parameters {
		b.output(h, "latent_parameters", o.float, sym("batch"), fixed(2*latentChannels), sym("latent_height"), sym("latent_width"))
		return b.g
	}
	mean := b.op("Slice", []string{h, b.ints(0), b.ints(latentChannels), b.ints(1)})
	b.output(mean, "latent_sample", o.float, sym("batch"), fixed(latentChannels), sym("latent_height"), sym("latent_width"))
	return b.g
}
