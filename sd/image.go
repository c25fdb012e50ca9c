package sd

import (
	"image"
	"math"
)

// toRGBA converts a VAE output [3,h,w] in [-1, 1] to an opaque RGBA image the
// way diffusers does: (x/2 + 0.5) clamped to [0, 1], times 255, rounded.
func toRGBA(chw []float32, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	plane := w * h
	for p := 0; p < plane; p++ {
		o := 4 * p
		img.Pix[o] = toByte(chw[p])
		img.Pix[o+1] = toByte(chw[plane+p])
		img.Pix[o+2] = toByte(chw[2*plane+p])
		img.Pix[o+3] = 255
	}
	return img
}

func toByte(v float32) uint8 {
	x := float64(v)/2 + 0.5
	if !(x > 0) { // also NaN
		return 0
	}
	if x >= 1 {
		return 255
	}
	return uint8(math.RoundToEven(x * 255))
}
