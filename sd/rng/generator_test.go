package rng

import (
	"slices"
	"testing"
)

func TestMT19937KnownOutputs(t *testing.T) {
	// The C++ standard fixes std::mt19937's outputs for the default seed
	// 5489: the first is 3499211612 and the 10000th is 4123659995.
	var m mt19937
	m.seed(5489)
	if got := m.uint32(); got != 3499211612 {
		t.Errorf("first output = %d, want 3499211612", got)
	}
	for range 9998 {
		m.uint32()
	}
	if got := m.uint32(); got != 4123659995 {
		t.Errorf("10000th output = %d, want 4123659995", got)
	}
}

func TestSeedUsesLow32Bits(t *testing.T) {
	// PyTorch's engine keeps seed & 0xffffffff; the oracle's seed 2^32+7
	// case passing confirms it end to end.
	negativeTwo := int64(-2) // torch.manual_seed(-2) reinterprets it as a uint64
	tests := []struct {
		name       string
		seed, same uint64
	}{
		{"above bit 31", 1<<32 + 7, 7},
		{"max uint64", 1<<64 - 1, 0xffffffff},
		{"negative seed as two's complement", uint64(negativeTwo), 0xfffffffe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := make([]float32, 64), make([]float32, 64)
			New(tt.seed).Randn(a)
			New(tt.same).Randn(b)
			if !slices.Equal(a, b) {
				t.Errorf("seeds %d and %d differ", tt.seed, tt.same)
			}
		})
	}
	a, b := make([]float32, 16), make([]float32, 16)
	New(1).Randn(a)
	New(2).Randn(b)
	if slices.Equal(a, b) {
		t.Error("seeds 1 and 2 gave the same values")
	}
}

func TestUniformRange(t *testing.T) {
	values := make([]float32, 1<<14)
	New(3).Uniform(values)
	for i, v := range values {
		// Multiples of 2^-24 in [0, 1): exactly representable steps.
		if v < 0 || v >= 1 || v*(1<<24) != float32(int32(v*(1<<24))) {
			t.Fatalf("value %d = %v is not a multiple of 2^-24 in [0, 1)", i, v)
		}
	}
}

func TestRandnEmptyIsNoOp(t *testing.T) {
	g, fresh := New(9), New(9)
	g.Randn(nil)
	a, b := make([]float32, 4), make([]float32, 4)
	g.Randn(a)
	fresh.Randn(b)
	if !slices.Equal(a, b) {
		t.Error("Randn(nil) advanced the generator")
	}
}

func TestRandnDoesNotAllocate(t *testing.T) {
	g := New(1)
	latent := make([]float32, 4*64*64)
	small := make([]float32, 3)
	allocs := testing.AllocsPerRun(20, func() {
		g.Randn(latent)
		g.Randn(small)
	})
	if allocs != 0 {
		t.Errorf("Randn allocated %v times per call", allocs)
	}
}

func BenchmarkRandnLatent4x64x64(b *testing.B) {
	g := New(1234)
	latent := make([]float32, 4*64*64)
	b.ReportAllocs()
	b.SetBytes(int64(4 * len(latent)))
	for b.Loop() {
		g.Randn(latent)
	}
}
