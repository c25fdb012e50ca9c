// Package half converts between float32 and IEEE 754 binary16 ("fp16"), the
// element type of fp16 ONNX graphs. Conversions round to nearest even, keep
// infinities and NaN, and produce subnormals, so a round trip through fp16 is
// exactly what a GPU would store.
package half

import "math"

// Float16 is the raw bit pattern of one binary16 value.
type Float16 uint16

// FromFloat32 rounds f to the nearest binary16 value (ties to even).
func FromFloat32(f float32) Float16 {
	bits := math.Float32bits(f)
	sign := uint16(bits>>16) & 0x8000
	exp := int32(bits>>23) & 0xff
	mant := bits & 0x7fffff

	switch {
	case exp == 0xff: // Inf or NaN; keep NaN quiet and non-zero.
		if mant != 0 {
			return Float16(sign | 0x7e00)
		}
		return Float16(sign | 0x7c00)
	case exp > 142: // too large: |f| >= 65520 rounds to Inf
		return Float16(sign | 0x7c00)
	case exp >= 113: // normal binary16
		h := uint32(exp-112)<<10 | mant>>13
		rest := mant & 0x1fff
		if rest > 0x1000 || (rest == 0x1000 && h&1 == 1) {
			h++ // may carry into the exponent, up to Inf: that is correct
		}
		return Float16(sign | uint16(h))
	case exp >= 102: // subnormal binary16
		mant |= 0x800000
		shift := uint32(126 - exp)
		h := mant >> shift
		rest := mant & (1<<shift - 1)
		halfway := uint32(1) << (shift - 1)
		if rest > halfway || (rest == halfway && h&1 == 1) {
			h++
		}
		return Float16(sign | uint16(h))
	default: // underflows to signed zero
		return Float16(sign)
	}
}

// Float32 widens h exactly.
func (h Float16) Float32() float32 {
	sign := uint32(h&0x8000) << 16
	exp := uint32(h>>10) & 0x1f
	mant := uint32(h & 0x3ff)
	switch {
	case exp == 0x1f:
		return math.Float32frombits(sign | 0x7f800000 | mant<<13)
	case exp != 0:
		return math.Float32frombits(sign | (exp+112)<<23 | mant<<13)
	case mant == 0:
		return math.Float32frombits(sign)
	default: // subnormal: normalise
		e := uint32(113)
		for mant&0x400 == 0 {
			mant <<= 1
			e--
		}
		return math.Float32frombits(sign | e<<23 | (mant&0x3ff)<<13)
	}
}

// Encode writes src as little-endian binary16 into dst, which must hold
// 2*len(src) bytes (the layout of ONNX raw_data and of ORT tensors).
func Encode(dst []byte, src []float32) {
	_ = dst[2*len(src)-1]
	for i, f := range src {
		h := FromFloat32(f)
		dst[2*i] = byte(h)
		dst[2*i+1] = byte(h >> 8)
	}
}

// Decode reads little-endian binary16 from src into dst (len(src) == 2*len(dst)).
func Decode(dst []float32, src []byte) {
	_ = src[2*len(dst)-1]
	for i := range dst {
		dst[i] = Float16(uint16(src[2*i]) | uint16(src[2*i+1])<<8).Float32()
	}
}
