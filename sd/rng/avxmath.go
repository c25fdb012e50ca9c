package rng

import "math"

// float32 log and sincos computed operation for operation as PyTorch's x86-64
// build computes them: the Cephes-derived polynomials of avx_mathfun.h, with
// each multiply that feeds an add fused into one FMA the way GCC contracts
// those intrinsics under -mfma. With libm's log/sin/cos about a third of the
// oracle's values differ (some by several ulps) and with no fusing a few
// differ by an ulp; other plausible fusings match the listed values but miss
// the sums. This sequence matches the oracle bit for bit, sums included. Every product that must be rounded on its own is wrapped in
// float32(...) so that Go never fuses it either.

// Coefficients of avx_mathfun's log: log(1+x) = x - x^2/2 + x^3*P(x).
const (
	logSqrtHalf = float32(0.707106781186547524)
	logLn2Lo    = float32(-2.12194440e-4) // ln 2 = logLn2Hi + logLn2Lo, split for exactness
	logLn2Hi    = float32(0.693359375)
)

var logPoly = [...]float32{
	7.0376836292e-2, -1.1514610310e-1, 1.1676998740e-1,
	-1.2420140846e-1, 1.4249322787e-1, -1.6668057665e-1,
	2.0000714765e-1, -2.4999993993e-1, 3.3333331174e-1,
}

// avxLog is log256_ps for one lane, for x in (0, 1] (all Box-Muller needs:
// 1-u with u a multiple of 2^-24 in [0, 1), so never zero or subnormal).
func avxLog(x float32) float32 {
	bits := math.Float32bits(x)
	// Split x = m * 2^e with m in [0.5, 1).
	e := float32(int32(bits>>23)-0x7f) + 1
	m := math.Float32frombits(bits&^0x7f800000 | math.Float32bits(0.5))
	// Move m into [sqrt(1/2), sqrt(2)) and take 1 off: x becomes 1+f times 2^e.
	var extra float32
	if m < logSqrtHalf {
		extra = m
		e--
	}
	f := m - 1
	f += extra

	f2 := float32(f * f)
	p := logPoly[0]
	for _, c := range logPoly[1:] {
		p = fma32(p, f, c)
	}
	p = float32(p * f)
	p = fma32(p, f2, float32(e*logLn2Lo))
	p = fma32(-f2, 0.5, p)
	f += p
	return fma32(e, logLn2Hi, f)
}

// Coefficients of avx_mathfun's sin and cos (Cephes sinf/cosf).
const (
	fourOverPi = float32(1.27323954473516)
	// pi/4 in three parts, so that x - k*pi/4 loses nothing.
	negPiOver4Hi  = float32(-0.78515625)
	negPiOver4Mid = float32(-2.4187564849853515625e-4)
	negPiOver4Lo  = float32(-3.77489497744594108e-8)
	sinC0         = float32(-1.9515295891e-4)
	sinC1         = float32(8.3321608736e-3)
	sinC2         = float32(-1.6666654611e-1)
	cosC0         = float32(2.443315711809948e-5)
	cosC1         = float32(-1.388731625493765e-3)
	cosC2         = float32(4.166664568298827e-2)
)

// avxSincos is sincos256_ps for one lane, for x >= 0 (Box-Muller angles lie
// in [0, 2*pi)).
func avxSincos(x float32) (sin, cos float32) {
	// Octant j (rounded up to even) and x reduced to [-pi/4, pi/4].
	j := int32(float32(x * fourOverPi))
	j = (j + 1) &^ 1
	k := float32(j)
	r := fma32(k, negPiOver4Hi, x)
	r = fma32(k, negPiOver4Mid, r)
	r = fma32(k, negPiOver4Lo, r)

	r2 := float32(r * r)
	cosPoly := fma32(cosC0, r2, cosC1)
	cosPoly = fma32(cosPoly, r2, cosC2)
	cosPoly = float32(cosPoly * r2)
	cosPoly = fma32(cosPoly, r2, -float32(r2*0.5)) + 1

	sinPoly := fma32(sinC0, r2, sinC1)
	sinPoly = fma32(sinPoly, r2, sinC2)
	sinPoly = float32(sinPoly * r2)
	sinPoly = fma32(sinPoly, r, r)

	// Octants 2, 3, 6, 7 swap the two polynomials.
	sin, cos = sinPoly, cosPoly
	if j&2 != 0 {
		sin, cos = cosPoly, sinPoly
	}
	if j&4 != 0 {
		sin = -sin
	}
	if (j-2)&4 == 0 {
		cos = -cos
	}
	return sin, cos
}

// fma32 is a float32 fused multiply-add, a*b+c rounded once. The product of
// two float32s is exact in float64, so the float64 sum is rounded once; its
// conversion to float32 can only round a second time wrongly when that sum
// sits exactly on a float32 midpoint (or in float32's subnormal range), and
// only then is the exact remainder needed.
func fma32(a, b, c float32) float32 {
	sum := float64(float64(a)*float64(b)) + float64(c)
	bits := math.Float64bits(sum)
	const (
		belowFloat32 = 1<<29 - 1 // float64 mantissa bits float32 drops
		midpoint     = 1 << 28
		minNormal32  = 0x381 << 52 // float64 exponent field of 2^-126
	)
	if bits&belowFloat32 != midpoint && bits&^(1<<63) >= minNormal32 {
		return float32(sum)
	}
	return fma32Slow(a, b, c)
}

// fma32Slow recovers the float64 sum's rounding error exactly (TwoSum) and
// folds it into the last bit (round to odd), after which one conversion to
// float32 rounds as a single rounding of the exact value would.
func fma32Slow(a, b, c float32) float32 {
	product := float64(float64(a) * float64(b))
	addend := float64(c)
	sum := product + addend
	back := sum - product
	rest := (product - (sum - back)) + (addend - back)
	if rest != 0 {
		bits := math.Float64bits(sum)
		if bits&1 == 0 {
			if (rest > 0) == (sum > 0) {
				bits++ // away from zero, towards the exact value
			} else {
				bits--
			}
			sum = math.Float64frombits(bits)
		}
	}
	return float32(sum)
}
