package rng

// Generator is PyTorch's CPU generator: the mt19937 engine plus the cached
// second value of the scalar Box-Muller draw.
type Generator struct {
	engine mt19937

	// cachedNormal is the float64 that at::normal_distribution<double> left
	// behind (PyTorch's next_double_normal_sample); only the scalar path of
	// Randn reads or writes it, the vectorised path leaves it alone.
	cachedNormal    float64
	hasCachedNormal bool
}

// New returns a generator in the state torch.Generator("cpu").manual_seed(seed)
// leaves: engine seeded, no cached normal value.
//
// PyTorch accepts Python ints from -2^63 to 2^64-1. Non-negative ones map to
// the same uint64; a negative seed s is taken as its two's complement, which
// is New(uint64(s)) for an int64 s. Anything outside that range makes PyTorch
// raise (overflow) and has no uint64 form. Only the low 32 bits seed the
// engine, so seeds that differ only above bit 31 give the same numbers in
// PyTorch and here.
func New(seed uint64) *Generator {
	g := &Generator{}
	g.engine.seed(seed)
	return g
}

// random64 is PyTorch's random64(): two draws, the first as the high word.
func (g *Generator) random64() uint64 {
	hi := uint64(g.engine.uint32())
	lo := uint64(g.engine.uint32())
	return hi<<32 | lo
}

// uniformFloat32 is at::uniform_real_distribution<float>(0, 1): one 32-bit
// draw, its low 24 bits (float32's mantissa width) scaled into [0, 1).
func (g *Generator) uniformFloat32() float32 {
	return float32(g.engine.uint32()&(1<<24-1)) * (1.0 / (1 << 24))
}

// uniformFloat64 is at::uniform_real_distribution<double>(0, 1): one 64-bit
// draw, its low 53 bits scaled into [0, 1).
func (g *Generator) uniformFloat64() float64 {
	return float64(g.random64()&(1<<53-1)) * (1.0 / (1 << 53))
}

// Uniform fills dst as torch.rand of len(dst) float32 elements would
// (values in [0, 1), one 32-bit draw each), advancing the generator the same
// way. It leaves the cached normal value alone, as torch.rand does.
func (g *Generator) Uniform(dst []float32) {
	for i := range dst {
		dst[i] = g.uniformFloat32()
	}
}
