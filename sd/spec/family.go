package spec

import "math"

// Model families: which pipeline a folder runs and what sizes it was
// trained at.
const (
	FamilySD1  = "sd15" // Stable Diffusion 1.x: CLIP ViT-L, 512-class
	FamilySD2  = "sd2"  // Stable Diffusion 2.x and SD-Turbo: OpenCLIP ViT-H, 768-class (512 for base and Turbo)
	FamilySDXL = "sdxl" // SDXL base 1.0 and SDXL-Turbo: two text encoders, 1024-class (512 for Turbo)
)

// Size is a width and height in pixels.
type Size struct{ Width, Height int }

// xlBuckets are SDXL's training buckets at 1024x1024 (landscape halves;
// their transposes are buckets too). Every family's buckets are these
// scaled to its native side: SDXL trained on them, and SD 1.x/2.x
// fine-tunes use the same aspect set at 512 and 768.
var xlBuckets = []Size{{1024, 1024}, {1152, 896}, {1216, 832}, {1344, 768}}

// Buckets are the native sizes of a model whose square native size is
// nativeW x nativeH: SDXL's buckets scaled to its side (rounded to
// multiples of 8), landscape and portrait. A non-square native size is
// its own single bucket.
func Buckets(nativeW, nativeH int) []Size {
	if nativeW <= 0 || nativeH <= 0 {
		return nil
	}
	if nativeW != nativeH {
		return []Size{{nativeW, nativeH}}
	}
	scale := float64(nativeW) / 1024
	out := make([]Size, 0, 2*len(xlBuckets)-1)
	for i, b := range xlBuckets {
		s := Size{round8(float64(b.Width) * scale), round8(float64(b.Height) * scale)}
		if i == 0 {
			s = Size{nativeW, nativeH}
		}
		out = append(out, s)
		if s.Width != s.Height {
			out = append(out, Size{s.Height, s.Width})
		}
	}
	return out
}

func round8(v float64) int { return max(8, int(math.Round(v/8))*8) }

// NearestBucket is the bucket whose aspect ratio is closest to w x h's
// (in log ratio, so 2:1 and 1:2 are equally far from 1:1). ok is false
// when there are no buckets.
func NearestBucket(buckets []Size, w, h int) (Size, bool) {
	if len(buckets) == 0 || w <= 0 || h <= 0 {
		return Size{}, false
	}
	want := math.Log(float64(w) / float64(h))
	best, bestD := buckets[0], math.Inf(1)
	for _, b := range buckets {
		d := math.Abs(math.Log(float64(b.Width)/float64(b.Height)) - want)
		if d < bestD {
			best, bestD = b, d
		}
	}
	return best, true
}
