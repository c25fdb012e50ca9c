package synth

import "math"

// unetConfig is the shape of a UNet2DConditionModel (SD 1.x flavour).
type unetConfig struct {
	channels []int64 // block_out_channels, one level each
	layers   int     // ResNet blocks per down level (up levels have one more)
	attn     []bool  // a spatial transformer after each ResNet of this down level
	heads    int64
	ctxDim   int64 // cross-attention width = text encoder hidden size
	groups   int64
	// headDim > 0 fixes the width of a head instead of their number (SD 2:
	// 64, so 5, 10 and 20 heads on the three levels).
	headDim int64
	// linearProj: the transformers' proj_in and proj_out are linear layers
	// on the tokens (SD 2) rather than 1x1 convolutions (SD 1).
	linearProj bool

	// depth is the number of transformer blocks of each level's spatial
	// transformers (SDXL: 0, 2, 10); nil or 0 means one. midDepth is the
	// middle block's (0: one).
	depth    []int
	midDepth int
	// addTextDim > 0 makes SDXL's "text_time" added conditioning: inputs
	// text_embeds [batch, addTextDim] and time_ids [batch, 6], each time id
	// embedded in addTimeDim sinusoids (diffusers' add_time_proj).
	addTextDim int64
	addTimeDim int64
}

// depthAt is the number of transformer blocks on a down level (and its up level).
func (c unetConfig) depthAt(level int) int {
	if level < len(c.depth) && c.depth[level] > 0 {
		return c.depth[level]
	}
	return 1
}

// headsAt is the number of attention heads on a level of width c.
func (c unetConfig) headsAt(width int64) int64 {
	if c.headDim > 0 {
		return width / c.headDim
	}
	return c.heads
}

func (c unetConfig) tembDim() int64 { return 4 * c.channels[0] }

// netOptions are the settings every network shares.
type netOptions struct {
	float    dataType
	seed     uint64
	timestep string // UNet only
	inpaint  bool   // UNet only
	// timeCondDim > 0 adds LCM's timestep_cond input [batch, timeCondDim]
	// (UNet only).
	timeCondDim int64
	// weights supplies the parameters; nil draws them at random.
	weights Weights
	// anonymousMatMul: Options.AnonymousMatMulWeights.
	anonymousMatMul bool
	fusedAttention  bool // Options.FusedAttention
}

// lcmTimeCondDim is time_cond_proj_dim of LCM-distilled SD 1.5 UNets.
const lcmTimeCondDim = 256

// buildUNet writes the denoiser: sample, timestep and encoder_hidden_states
// in, predicted noise (out_sample) out.
func buildUNet(cfg unetConfig, o netOptions) *graph {
	b := newNetBuilder("unet", o)
	inChannels := int64(4)
	if o.inpaint {
		inChannels = 9 // latents, mask, masked-image latents
	}
	sample := b.input("sample", o.float, sym("batch"), fixed(inChannels), sym("height"), sym("width"))
	timestep, timestepType := b.timestepInput(o)
	context := b.input("encoder_hidden_states", o.float, sym("batch"), sym("sequence"), fixed(cfg.ctxDim))

	timeCond := ""
	if o.timeCondDim > 0 {
		timeCond = b.input("timestep_cond", o.float, sym("batch"), fixed(o.timeCondDim))
	}
	temb := b.timeEmbedding(timestep, timestepType, sample, timeCond, o.timeCondDim, cfg)
	if cfg.addTextDim > 0 {
		textEmbeds := b.input("text_embeds", o.float, sym("batch"), fixed(cfg.addTextDim))
		timeIDs := b.input("time_ids", o.float, sym("batch"), fixed(sdxlTimeIDs))
		temb = b.op("Add", []string{temb, b.addedEmbedding(textEmbeds, timeIDs, cfg)})
	}
	tembAct := b.silu(temb)
	n := norms{groups: cfg.groups, eps: 1e-5, tembDim: cfg.tembDim()}
	// block is the j-th ResNet of a level and, where the level has them,
	// the spatial transformer after it.
	block := func(h, level string, j int, in, out int64, attn bool, depth int) string {
		h = b.resnet(h, tembAct, join(level, "resnets", j), in, out, n)
		if attn {
			h = b.spatialTransformer(h, context, join(level, "attentions", j), out, depth, cfg)
		}
		return h
	}

	h := b.conv(sample, "conv_in", inChannels, cfg.channels[0], 3, 1)
	type skip struct {
		value    string
		channels int64
	}
	skips := []skip{{h, cfg.channels[0]}}
	cur := cfg.channels[0]
	last := len(cfg.channels) - 1
	for i, ch := range cfg.channels {
		for j := range cfg.layers {
			h = block(h, join("down_blocks", i), j, cur, ch, cfg.attn[i], cfg.depthAt(i))
			cur = ch
			skips = append(skips, skip{h, ch})
		}
		if i != last {
			h = b.conv(h, join("down_blocks", i, "downsamplers.0.conv"), ch, ch, 3, 2)
			skips = append(skips, skip{h, ch})
		}
	}

	h = b.resnet(h, tembAct, "mid_block.resnets.0", cur, cur, n)
	h = b.spatialTransformer(h, context, "mid_block.attentions.0", cur, max(1, cfg.midDepth), cfg)
	h = b.resnet(h, tembAct, "mid_block.resnets.1", cur, cur, n)

	for i := range cfg.channels {
		level := last - i
		ch := cfg.channels[level]
		for j := range cfg.layers + 1 {
			s := skips[len(skips)-1]
			skips = skips[:len(skips)-1]
			h = b.op("Concat", []string{h, s.value}, attrI("axis", 1))
			h = block(h, join("up_blocks", i), j, cur+s.channels, ch, cfg.attn[level], cfg.depthAt(level))
			cur = ch
		}
		if i != last {
			h = b.upsampleTo(h, skips[len(skips)-1].value, join("up_blocks", i, "upsamplers.0.conv"), ch)
		}
	}

	h = b.silu(b.groupNorm(h, "conv_norm_out", cur, cfg.groups, 1e-5))
	h = b.conv(h, "conv_out", cur, 4, 3, 1)
	b.output(h, "out_sample", o.float, sym("batch"), fixed(4), sym("height"), sym("width"))
	return b.g
}

// Timestep input variants, as exporters declare them.
const (
	TimestepInt64Batch  = "int64-batch"  // int64[batch]: optimum < 1.24
	TimestepFloatBatch  = "float-batch"  // float[batch]: diffusers' conversion script
	TimestepFloatScalar = "float-scalar" // rank-0 float: optimum >= 1.24
)

// timestepInput declares `timestep` as o asks ("float" is the network's
// float type) and returns its name and element type.
func (b *builder) timestepInput(o netOptions) (string, dataType) {
	switch o.timestep {
	case TimestepInt64Batch:
		return b.input("timestep", dtInt64, sym("batch")), dtInt64
	case TimestepFloatScalar:
		return b.input("timestep", o.float), o.float
	default:
		return b.input("timestep", o.float, sym("batch")), o.float
	}
}

// timeEmbedding is diffusers' sinusoidal embedding (cos first, as SD's
// flip_sin_to_cos) followed by a two-layer MLP. The sinusoid is computed in
// fp32 even in fp16 networks, where t*freq would lose the timestep's detail.
//
// LCM UNets add a projection of timestep_cond to the sinusoid (diffusers'
// TimestepEmbedding cond_proj) before the MLP.
func (b *builder) timeEmbedding(timestep string, timestepType dataType, sample, timeCond string, condDim int64, cfg unetConfig) string {
	t := timestep
	if timestepType != dtFloat {
		t = b.op("Cast", []string{t}, attrI("to", int64(dtFloat)))
	}
	// Every variant becomes [batch]: a scalar or a [1] broadcasts.
	batch := b.op("Shape", []string{sample}, attrI("start", 0), attrI("end", 1))
	t = b.op("Expand", []string{t, batch})
	t = b.op("Unsqueeze", []string{t, b.ints(1)}) // [B, 1]

	dim := cfg.channels[0]
	half := dim / 2
	freqs := make([]float32, half)
	for i := range freqs {
		freqs[i] = float32(math.Exp(-math.Log(10000) * float64(i) / float64(half)))
	}
	arg := b.op("Mul", []string{t, b.floats(dtFloat, []int64{1, half}, freqs...)})
	emb := b.op("Concat", []string{b.op("Cos", []string{arg}), b.op("Sin", []string{arg})}, attrI("axis", 1))
	if b.float != dtFloat {
		emb = b.op("Cast", []string{emb}, attrI("to", int64(b.float)))
	}
	if timeCond != "" {
		emb = b.op("Add", []string{emb, b.linear(timeCond, "time_embedding.cond_proj", condDim, dim, false)})
	}
	h := b.linear(emb, "time_embedding.linear_1", dim, cfg.tembDim(), true)
	return b.linear(b.silu(h), "time_embedding.linear_2", cfg.tembDim(), cfg.tembDim(), true)
}

// spatialTransformer is diffusers' Transformer2DModel with depth
// BasicTransformerBlocks: 1x1 conv proj_in and proj_out (SD 1.x), or linear
// ones applied to the tokens (SD 2.x, SDXL).
func (b *builder) spatialTransformer(x, context, name string, c int64, depth int, cfg unetConfig) string {
	shape := b.op("Shape", []string{x})
	h := b.groupNorm(x, name+".norm", c, cfg.groups, 1e-6)
	if cfg.linearProj {
		h = b.linear(b.toTokens(h, c), name+".proj_in", c, c, true)
	} else {
		h = b.toTokens(b.conv(h, name+".proj_in", c, c, 1, 1), c)
	}
	heads := cfg.headsAt(c)
	for k := range depth {
		blk := join(name+".transformer_blocks", k)
		self := attnSpec{
			q: blk + ".attn1.to_q", k: blk + ".attn1.to_k", v: blk + ".attn1.to_v", out: blk + ".attn1.to_out.0",
			dim: c, ctxDim: c, heads: heads,
		}
		n := b.layerNorm(h, blk+".norm1", c, 1e-5)
		h = b.op("Add", []string{h, b.attention(n, n, self)})

		cross := attnSpec{
			q: blk + ".attn2.to_q", k: blk + ".attn2.to_k", v: blk + ".attn2.to_v", out: blk + ".attn2.to_out.0",
			dim: c, ctxDim: cfg.ctxDim, heads: heads,
		}
		n = b.layerNorm(h, blk+".norm2", c, 1e-5)
		h = b.op("Add", []string{h, b.attention(n, context, cross)})

		n = b.layerNorm(h, blk+".norm3", c, 1e-5)
		h = b.op("Add", []string{h, b.geglu(n, blk+".ff", c)})
	}
	if cfg.linearProj {
		h = b.fromTokens(b.linear(h, name+".proj_out", c, c, true), shape)
	} else {
		h = b.conv(b.fromTokens(h, shape), name+".proj_out", c, c, 1, 1)
	}
	return b.op("Add", []string{h, x})
}

// geglu is the transformer's feed-forward: a GELU-gated projection to 4c.
func (b *builder) geglu(x, name string, c int64) string {
	inner := 4 * c
	p := b.linear(x, name+".net.0.proj", c, 2*inner, true)
	parts := b.opN("Split", 2, []string{p, b.ints(inner, inner)}, attrI("axis", -1))
	h := b.op("Mul", []string{parts[0], b.gelu(parts[1])})
	return b.linear(h, name+".net.2", inner, c, true)
}
