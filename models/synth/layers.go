package synth

import (
	"math"
	"strings"
)

// Building blocks shared by the networks, each written with opset-17 ops
// that ONNX Runtime's CPU provider runs in fp32 and (through the casts it
// inserts) in fp16, and that its CUDA provider runs natively.

// biasStd keeps biases small: they shift activations without dominating them.
const biasStd = 0.02

// linear maps the last axis from in to out features. The weight is stored
// [in, out], the layout MatMul takes (torch exports store it transposed too).
func (b *builder) linear(x, name string, in, out int64, bias bool) string {
	defer b.within(name)()
	y := b.op("MatMul", []string{x, b.matmulWeight(name+".weight", fanInStd(in), in, out)})
	if bias {
		y = b.op("Add", []string{y, b.weight(name+".bias", biasStd, out)})
	}
	return y
}

// conv is a k x k convolution with "same" padding for stride 1.
func (b *builder) conv(x, name string, in, out, k, stride int64) string {
	p := k / 2
	return b.convPads(x, name, in, out, k, stride, [4]int64{p, p, p, p})
}

// convPads is a convolution with explicit pads (top, left, bottom, right).
func (b *builder) convPads(x, name string, in, out, k, stride int64, pads [4]int64) string {
	defer b.within(name)()
	w := b.weight(name+".weight", fanInStd(in*k*k), out, in, k, k)
	bias := b.weight(name+".bias", biasStd, out)
	return b.op("Conv", []string{x, w, bias},
		attrIs("kernel_shape", k, k),
		attrIs("strides", stride, stride),
		attrIs("pads", pads[0], pads[1], pads[2], pads[3]))
}

// groupNorm normalises [B, C, H, W] over groups of channels the way torch
// exports GroupNorm: reshape to [B, G, -1], InstanceNormalization, reshape
// back, then the per-channel affine transform.
func (b *builder) groupNorm(x, name string, c, groups int64, eps float32) string {
	defer b.within(name)()
	shape := b.op("Shape", []string{x})
	g := b.op("Reshape", []string{x, b.ints(0, groups, -1)})
	g = b.op("InstanceNormalization", []string{g, b.fill(1, groups), b.fill(0, groups)}, attrF("epsilon", eps))
	y := b.op("Reshape", []string{g, shape})
	y = b.op("Mul", []string{y, b.filled(name+".weight", 1, c, 1, 1)})
	return b.op("Add", []string{y, b.filled(name+".bias", 0, c, 1, 1)})
}

// layerNorm normalises the last axis (LayerNormalization is in opset 17).
func (b *builder) layerNorm(x, name string, c int64, eps float32) string {
	defer b.within(name)()
	return b.op("LayerNormalization",
		[]string{x, b.filled(name+".weight", 1, c), b.filled(name+".bias", 0, c)},
		attrI("axis", -1), attrF("epsilon", eps))
}

func (b *builder) silu(x string) string {
	return b.op("Mul", []string{x, b.op("Sigmoid", []string{x})})
}

// gelu is the exact (erf) GELU; opset 17 has no Gelu op.
func (b *builder) gelu(x string) string {
	e := b.op("Erf", []string{b.op("Mul", []string{x, b.scalar(1 / math.Sqrt2)})})
	y := b.op("Mul", []string{x, b.op("Add", []string{e, b.scalar(1)})})
	return b.op("Mul", []string{y, b.scalar(0.5)})
}

// quickGELU is CLIP's x * sigmoid(1.702 x).
func (b *builder) quickGELU(x string) string {
	s := b.op("Sigmoid", []string{b.op("Mul", []string{x, b.scalar(1.702)})})
	return b.op("Mul", []string{x, s})
}

// attnSpec describes one multi-head attention: parameter names of the
// projections (diffusers' to_q.. or CLIP's q_proj..), widths, heads.
type attnSpec struct {
	q, k, v, out string
	dim, ctxDim  int64
	heads        int64
	qkvBias      bool
	mask         string // additive [N, M] mask value, or ""
}

// attention attends from x [B, N, dim] to context [B, M, ctxDim].
func (b *builder) attention(x, context string, s attnSpec) string {
	if i := strings.LastIndex(s.q, "."); i > 0 {
		defer b.within(s.q[:i])() // attn1, self_attn: its projections scope themselves
	}
	if b.fusedAttention && s.mask == "" {
		// One com.microsoft MultiHeadAttention node over the separate q, k
		// and v projections (which LoRAs adapt as usual): ONNX Runtime's
		// flash / memory-efficient kernels on CUDA, its own CPU kernel.
		// The default scale is 1/sqrt(head size), as below.
		q := b.linear(x, s.q, s.dim, s.dim, s.qkvBias)
		k := b.linear(context, s.k, s.ctxDim, s.dim, s.qkvBias)
		v := b.linear(context, s.v, s.ctxDim, s.dim, s.qkvBias)
		o := b.op("MultiHeadAttention", []string{q, k, v}, attrI("num_heads", s.heads))
		b.g.nodes[len(b.g.nodes)-1].domain = msDomain
		return b.linear(o, s.out, s.dim, s.dim, true)
	}
	headDim := s.dim / s.heads
	split := b.ints(0, 0, s.heads, headDim)
	heads := func(v string, perm ...int64) string {
		return b.op("Transpose", []string{b.op("Reshape", []string{v, split})}, attrIs("perm", perm...))
	}
	q := heads(b.linear(x, s.q, s.dim, s.dim, s.qkvBias), 0, 2, 1, 3)          // [B, h, N, d]
	k := heads(b.linear(context, s.k, s.ctxDim, s.dim, s.qkvBias), 0, 2, 3, 1) // [B, h, d, M]
	v := heads(b.linear(context, s.v, s.ctxDim, s.dim, s.qkvBias), 0, 2, 1, 3) // [B, h, M, d]

	q = b.op("Mul", []string{q, b.scalar(float32(1 / math.Sqrt(float64(headDim))))})
	scores := b.op("MatMul", []string{q, k})
	if s.mask != "" {
		scores = b.op("Add", []string{scores, s.mask})
	}
	probs := b.op("Softmax", []string{scores}, attrI("axis", -1))
	o := b.op("MatMul", []string{probs, v})
	o = b.op("Transpose", []string{o}, attrIs("perm", 0, 2, 1, 3))
	o = b.op("Reshape", []string{o, b.ints(0, 0, s.dim)})
	return b.linear(o, s.out, s.dim, s.dim, true)
}

// toTokens turns [B, C, H, W] into [B, H*W, C].
func (b *builder) toTokens(x string, c int64) string {
	t := b.op("Reshape", []string{x, b.ints(0, c, -1)})
	return b.op("Transpose", []string{t}, attrIs("perm", 0, 2, 1))
}

// fromTokens turns [B, H*W, C] back into shape (a [B, C, H, W] Shape value).
func (b *builder) fromTokens(t, shape string) string {
	x := b.op("Transpose", []string{t}, attrIs("perm", 0, 2, 1))
	return b.op("Reshape", []string{x, shape})
}

// resnet is diffusers' ResnetBlock2D. tembAct is SiLU(time embedding) or ""
// (the VAE has none); a 1x1 conv matches the skip when channels change.
func (b *builder) resnet(x, tembAct, name string, in, out int64, n norms) string {
	defer b.within(name)()
	h := b.silu(b.groupNorm(x, name+".norm1", in, n.groups, n.eps))
	h = b.conv(h, name+".conv1", in, out, 3, 1)
	if tembAct != "" {
		t := b.linear(tembAct, name+".time_emb_proj", n.tembDim, out, true)
		h = b.op("Add", []string{h, b.op("Unsqueeze", []string{t, b.ints(2, 3)})})
	}
	h = b.silu(b.groupNorm(h, name+".norm2", out, n.groups, n.eps))
	h = b.conv(h, name+".conv2", out, out, 3, 1)
	if in != out {
		x = b.conv(x, name+".conv_shortcut", in, out, 1, 1)
	}
	return b.op("Add", []string{x, h})
}

// norms carries a network's GroupNorm settings and time-embedding width.
type norms struct {
	groups  int64
	eps     float32
	tembDim int64
}

// upsample is nearest-neighbour x2 followed by a 3x3 conv.
func (b *builder) upsample(x, name string, c int64) string {
	scales := b.floats(dtFloat, []int64{4}, 1, 1, 2, 2)
	return b.conv(b.resizeNearest(x, scales, ""), name, c, c, 3, 1)
}

// upsampleTo is the UNet's upsampler: nearest-neighbour to the spatial size
// of the skip connection it meets next, then a 3x3 conv. diffusers passes
// that size (forward_upsample_size) so latents whose sides are not a
// multiple of 2^levels (e.g. 88x48 pixels -> 11x6) still line up.
func (b *builder) upsampleTo(x, like, name string, c int64) string {
	xShape, likeShape := b.op("Shape", []string{x}), b.op("Shape", []string{like})
	nc := b.op("Slice", []string{xShape, b.ints(0), b.ints(2)})
	hw := b.op("Slice", []string{likeShape, b.ints(2), b.ints(4)})
	sizes := b.op("Concat", []string{nc, hw}, attrI("axis", 0))
	return b.conv(b.resizeNearest(x, "", sizes), name, c, c, 3, 1)
}

func (b *builder) resizeNearest(x, scales, sizes string) string {
	inputs := []string{x, "", scales}
	if sizes != "" {
		inputs = append(inputs, sizes)
	}
	return b.op("Resize", inputs,
		attrS("mode", "nearest"),
		attrS("coordinate_transformation_mode", "asymmetric"),
		attrS("nearest_mode", "floor"))
}
