package rng

import (
	"math"
	"slices"
	"testing"
)

// Successive calls on one generator must match successive torch calls. The
// expectations here are oracle values rearranged by how PyTorch's code
// consumes the stream (see the comment on each case); none is invented.
func TestSuccessiveCallsMatchTorch(t *testing.T) {
	cases := loadTorchCases(t)
	seed0n4 := findTorchCase(t, cases, 0, 4)
	seed0n16 := findTorchCase(t, cases, 0, 16)
	seed0n512 := findTorchCase(t, cases, 0, 512)
	seed5n17 := findTorchCase(t, cases, 5, 17)

	t.Run("scalar path hands out the cached sine on the next call", func(t *testing.T) {
		// randn(4) is two Box-Muller pairs; split as 1+3 the first call
		// leaves the sine of pair one cached in the generator.
		g := New(0)
		first, rest := make([]float32, 1), make([]float32, 3)
		g.Randn(first)
		g.Randn(rest)
		checkValues(t, "1+3", append(first, rest...), seed0n4.First)
	})

	t.Run("vectorised path leaves the cached sine alone", func(t *testing.T) {
		// normal_fill never touches next_double_normal_sample, so the value
		// cached before a 16-element draw comes out after it.
		g := New(0)
		one := make([]float32, 1)
		g.Randn(one)
		g.Randn(make([]float32, 16))
		g.Randn(one)
		checkValues(t, "after vectorised draw", one, seed0n4.First[1:2])
	})

	t.Run("block-aligned calls equal one call", func(t *testing.T) {
		// With whole blocks of 16 and no ragged end, randn(16) then
		// randn(496) consume the stream exactly as randn(512) does.
		g := New(0)
		head, tail := make([]float32, 16), make([]float32, 496)
		g.Randn(head)
		g.Randn(tail)
		checkValues(t, "head", head, seed0n512.First[:16])
		checkValues(t, "tail start", tail[:16], seed0n512.First[16:32])
		checkValues(t, "tail end", tail[len(tail)-8:], seed0n512.Last)
		if s := sum64(head) + sum64(tail); math.Abs(s-seed0n512.Sum) > 1e-9*math.Abs(seed0n512.Sum) {
			t.Errorf("sum = %.12g, want %.12g", s, seed0n512.Sum)
		}
	})

	t.Run("scalar then vectorised differs from one vectorised call", func(t *testing.T) {
		// randn(4) takes the scalar path, so randn(4)+randn(12) is not
		// randn(16): the first part is the oracle's 4-element draw.
		g := New(0)
		small, large := make([]float32, 4), make([]float32, 12)
		g.Randn(small)
		g.Randn(large)
		checkValues(t, "first call", small, seed0n4.First)
		joined := append(small, large...)
		want := make([]float32, 16)
		for i, v := range seed0n16.First {
			want[i] = float32(v)
		}
		if slices.Equal(joined, want) {
			t.Error("4+12 elements reproduced the single 16-element draw")
		}
	})

	t.Run("ragged end is redrawn from fresh uniforms", func(t *testing.T) {
		// randn(17): 17 uniforms, block 0..15, then 16 new uniforms for
		// elements 1..16. Element 0 is therefore randn(16)'s element 0, and
		// elements 1..16 are what randn(16) gives after rand(17).
		head := make([]float32, 16)
		New(5).Randn(head)
		checkValues(t, "element 0", head[:1], seed5n17.First[:1])

		g := New(5)
		g.Uniform(make([]float32, 17))
		redrawn := make([]float32, 16)
		g.Randn(redrawn)
		checkValues(t, "elements 1..16", redrawn, seed5n17.First[1:17])
	})
}
