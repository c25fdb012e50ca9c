package rng

import (
	"math"
	"math/big"
	"math/rand/v2"
	"testing"
)

// exactFMA32 is a*b+c rounded once to float32, computed with big floats.
func exactFMA32(a, b, c float32) float32 {
	const prec = 256
	x := new(big.Float).SetPrec(prec).SetFloat64(float64(a))
	x.Mul(x, new(big.Float).SetPrec(prec).SetFloat64(float64(b)))
	x.Add(x, new(big.Float).SetPrec(prec).SetFloat64(float64(c)))
	f, _ := x.Float32()
	return f
}

func TestFMA32RoundsOnce(t *testing.T) {
	const ulp = 1.0 / (1 << 23)
	tests := []struct {
		name    string
		a, b, c float32
		want    float32
	}{
		// Exact result sits 2^-70 below the midpoint between 1+2^-23 and
		// 1+2^-22: rounding to float64 first would land on the midpoint and
		// then tie to the even 1+2^-22.
		{"just below a midpoint", 1 + ulp, (1 - ulp) / (1 << 24), 1 + ulp, 1 + ulp},
		// Mirror image: 2^-70 above the midpoint between 1+2^-22 and
		// 1+3*2^-23, which must round up to the odd 1+3*2^-23.
		{"just above a midpoint", -(1 + ulp), (1 - ulp) / (1 << 24), 1 + 3*ulp, 1 + 3*ulp},
		{"exact midpoint ties to even", 1, 1.0 / (1 << 24), 1 + ulp, 1 + 2*ulp},
		{"float32 subnormal result", 1.0 / (1 << 70), 1.0 / (1 << 70), 1.0 / (1 << 140), float32(math.Ldexp(1, -140) + math.Ldexp(1, -140))},
		{"exact product", 3, 0.5, 0.25, 1.75},
		{"cancellation", 1 + ulp, 1 - ulp, -1, float32(-ulp * ulp)},
		{"zero sum", 2, 3, -6, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fma32(tt.a, tt.b, tt.c); got != tt.want {
				t.Errorf("fma32(%g, %g, %g) = %.10g, want %.10g", tt.a, tt.b, tt.c, got, tt.want)
			}
		})
	}

	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		a := float32(r.NormFloat64())
		b := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(60)-30)))
		c := float32(r.NormFloat64() * math.Pow(2, float64(r.IntN(60)-30)))
		if got, want := fma32(a, b, c), exactFMA32(a, b, c); got != want {
			t.Fatalf("fma32(%g, %g, %g) = %.10g, want %.10g", a, b, c, got, want)
		}
	}
}

// The emulated functions must stay close to the true ones over the inputs
// Box-Muller gives them; bit-exactness against PyTorch is the oracle's job.
func TestAVXLogAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	inputs := []float32{1, 0.5, 1.0 / (1 << 24), 1 - 1.0/(1<<24), 0.70710677, 0.7071068}
	for range 50000 {
		inputs = append(inputs, 1-float32(r.Uint32N(1<<24))/(1<<24))
	}
	for _, x := range inputs {
		got, want := float64(avxLog(x)), math.Log(float64(x))
		if math.Abs(got-want) > 2e-7*math.Abs(want)+1e-12 {
			t.Fatalf("avxLog(%.9g) = %.9g, want %.9g", x, got, want)
		}
	}
	if got := avxLog(1); math.Float32bits(got) != 0 {
		t.Errorf("avxLog(1) = %g, want +0", got)
	}
}

func TestAVXSincosAccuracy(t *testing.T) {
	r := rand.New(rand.NewPCG(5, 6))
	inputs := []float32{0, math.Pi / 4, math.Pi / 2, math.Pi, 3 * math.Pi / 2, float32(2 * math.Pi)}
	for range 50000 {
		inputs = append(inputs, float32(2*math.Pi)*(float32(r.Uint32N(1<<24))/(1<<24)))
	}
	for _, x := range inputs {
		sin, cos := avxSincos(x)
		if d := math.Abs(float64(sin) - math.Sin(float64(x))); d > 2e-7 {
			t.Fatalf("sin(%.9g) = %.9g, off by %.3g", x, sin, d)
		}
		if d := math.Abs(float64(cos) - math.Cos(float64(x))); d > 2e-7 {
			t.Fatalf("cos(%.9g) = %.9g, off by %.3g", x, cos, d)
		}
	}
}

func TestBoxMuller16(t *testing.T) {
	t.Run("zero radius gives +0 like PyTorch's fmadd with mean +0", func(t *testing.T) {
		// All uniforms 0: log(1) = +0, so the radius is sqrt(-0) = -0 and
		// both raw products at angle 0 are -0.
		var block [blockSize]float32
		boxMuller16(&block)
		for i, v := range block {
			if math.Float32bits(v) != 0 {
				t.Errorf("block[%d] = %g (bits %#x), want +0", i, v, math.Float32bits(v))
			}
		}
	})
	t.Run("radius and angle", func(t *testing.T) {
		var block [blockSize]float32
		for j := range 8 {
			block[j] = 0.5           // radius sqrt(2 ln 2)
			block[j+8] = 0.125 * 0.5 // angle pi/8
		}
		boxMuller16(&block)
		radius := math.Sqrt(2 * math.Ln2)
		for j := range 8 {
			if d := math.Abs(float64(block[j]) - radius*math.Cos(math.Pi/8)); d > 1e-6 {
				t.Errorf("cos term %d = %g, off by %g", j, block[j], d)
			}
			if d := math.Abs(float64(block[j+8]) - radius*math.Sin(math.Pi/8)); d > 1e-6 {
				t.Errorf("sin term %d = %g, off by %g", j, block[j+8], d)
			}
		}
	})
}
