package rng

import "math"

// blockSize is the width of PyTorch's vectorised normal fill: 8 radii from the
// first half of a block, 8 angles from the second half.
const blockSize = 16

// Randn fills dst as torch.randn of a float32 tensor with len(dst) elements
// would, advancing the generator the same way, so successive calls match
// successive torch.randn calls on one generator. It does not allocate.
func (g *Generator) Randn(dst []float32) {
	if len(dst) >= blockSize {
		g.fillNormalBlocks(dst)
		return
	}
	for i := range dst {
		dst[i] = float32(g.scalarNormal())
	}
}

// fillNormalBlocks is PyTorch's normal_fill for contiguous float tensors of at
// least 16 elements: uniforms for every element first, then Box-Muller over
// whole blocks of 16 in place. A ragged end is not padded: the last 16
// elements get fresh uniforms and are transformed again, overwriting the
// tail of the last whole block.
func (g *Generator) fillNormalBlocks(dst []float32) {
	g.Uniform(dst)
	n := len(dst)
	for start := 0; start+blockSize <= n; start += blockSize {
		boxMuller16((*[blockSize]float32)(dst[start:]))
	}
	if n%blockSize != 0 {
		tail := (*[blockSize]float32)(dst[n-blockSize:])
		g.Uniform(tail[:])
		boxMuller16(tail)
	}
}

// boxMuller16 turns 16 uniforms into 16 normals the way normal_fill_16_AVX2
// does: element j (j < 8) gives the radius from 1-u[j], element j+8 the angle
// 2*pi*u[j+8]; the cosine term lands in j, the sine term in j+8.
func boxMuller16(block *[blockSize]float32) {
	const twoPi = float32(2 * math.Pi) // PyTorch rounds 2*pi to float once, as here
	for j := range blockSize / 2 {
		radius := sqrt32(float32(-2 * avxLog(1-block[j])))
		sin, cos := avxSincos(float32(twoPi * block[j+8]))
		// PyTorch ends with fmadd(n, std=1, mean=+0), which turns a -0 into +0.
		block[j] = float32(radius*cos) + 0
		block[j+8] = float32(radius*sin) + 0
	}
}

// scalarNormal is at::normal_distribution<double>(0, 1) with PyTorch's cache:
// each Box-Muller pair returns the cosine term and keeps the sine term in the
// generator for the next call.
func (g *Generator) scalarNormal() float64 {
	if g.hasCachedNormal {
		g.hasCachedNormal = false
		return g.cachedNormal + 0 // x*std+mean in PyTorch, which maps -0 to +0
	}
	angleU := g.uniformFloat64()
	radiusU := g.uniformFloat64()
	// 1-radiusU is exact for a multiple of 2^-53 in [0, 1), so this equals
	// both log(1-u) (older PyTorch) and log1p(-u) (newer).
	radius := math.Sqrt(-2 * math.Log(1-radiusU))
	theta := 2 * math.Pi * angleU
	g.cachedNormal = radius * math.Sin(theta)
	g.hasCachedNormal = true
	return radius*math.Cos(theta) + 0
}

// sqrt32 is a correctly rounded float32 square root (as _mm256_sqrt_ps):
// the float64 root of a float32 rounds to the same float32.
func sqrt32(x float32) float32 {
	return float32(math.Sqrt(float64(x)))
}
