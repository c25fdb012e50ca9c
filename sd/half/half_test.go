package half

import (
	"math"
	"testing"
)

func TestKnownValues(t *testing.T) {
	cases := []struct {
		f    float32
		bits Float16
	}{
		{0, 0x0000},
		{float32(math.Copysign(0, -1)), 0x8000},
		{1, 0x3c00},
		{-2, 0xc000},
		{0.5, 0x3800},
		{65504, 0x7bff}, // largest finite
		{65520, 0x7c00}, // rounds to Inf
		{float32(math.Inf(1)), 0x7c00},
		{5.960464477539063e-08, 0x0001}, // smallest subnormal
		{6.103515625e-05, 0x0400},       // smallest normal
		{0.333251953125, 0x3555},
		{1.0009765625, 0x3c01},
		{1.00048828125, 0x3c00}, // tie: rounds to even (down)
		{1.00146484375, 0x3c02}, // tie: rounds to even (up)
		{2.98e-08, 0x0000},      // below half the smallest subnormal
	}
	for _, c := range cases {
		if got := FromFloat32(c.f); got != c.bits {
			t.Errorf("FromFloat32(%g) = %#04x, want %#04x", c.f, got, c.bits)
		}
	}
	if h := FromFloat32(float32(math.NaN())); h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
		t.Errorf("NaN encoded as %#04x", h)
	}
}

// Every binary16 value must survive a widen-then-narrow round trip.
func TestRoundTripAllValues(t *testing.T) {
	for i := 0; i < 1<<16; i++ {
		h := Float16(i)
		f := h.Float32()
		if math.IsNaN(float64(f)) {
			if h&0x7c00 != 0x7c00 || h&0x3ff == 0 {
				t.Fatalf("%#04x widened to NaN", i)
			}
			continue
		}
		if back := FromFloat32(f); back != h {
			t.Fatalf("%#04x -> %g -> %#04x", i, f, back)
		}
	}
}

func TestEncodeDecode(t *testing.T) {
	src := []float32{1, -0.5, 3.25, 1000}
	buf := make([]byte, 2*len(src))
	Encode(buf, src)
	got := make([]float32, len(src))
	Decode(got, buf)
	for i := range src {
		if got[i] != src[i] {
			t.Errorf("element %d: %g != %g", i, got[i], src[i])
		}
	}
}
