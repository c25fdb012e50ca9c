package scheduler

import "math"

// combo is a per-element linear combination x·X + m·M of the sample x and
// the model output m. Every prediction type turns into such a pair at a
// given noise level, so steps compute coefficients once and then run one
// fused loop over the latents.
type combo struct{ X, M float64 }

func (c combo) at(x, m float32) float64 { return c.X*float64(x) + c.M*float64(m) }

// predictions returns how to read the clean sample x0 and the noise ε off a
// variance-preserving sample x = α·x0 + σ·ε (α² + σ² = 1) and the model
// output, for each diffusers prediction_type:
//
//	epsilon:      m = ε                 → x0 = (x - σm)/α
//	v_prediction: m = v = α·ε - σ·x0    → x0 = αx - σm,  ε = αm + σx
//	sample:       m = x0                → ε = (x - αm)/σ
func predictions(predictionType string, alpha, sigma float64) (x0, eps combo) {
	switch predictionType {
	case "v_prediction":
		return combo{alpha, -sigma}, combo{sigma, alpha}
	case "sample":
		return combo{0, 1}, combo{1 / sigma, -alpha / sigma}
	default: // epsilon
		return combo{1 / alpha, -sigma / alpha}, combo{0, 1}
	}
}

// vpFromAlphaBar is (α, σ) = (sqrt(ᾱ), sqrt(1-ᾱ)).
func vpFromAlphaBar(alphaBar float64) (alpha, sigma float64) {
	return math.Sqrt(alphaBar), math.Sqrt(1 - alphaBar)
}

// vpFromVE converts a variance-exploding noise level s (x = x0 + s·ε) to the
// variance-preserving pair: α = 1/sqrt(s²+1), σ = s·α.
func vpFromVE(s float64) (alpha, sigma float64) {
	alpha = 1 / math.Sqrt(s*s+1)
	return alpha, s * alpha
}

// clamp limits v to [-r, r].
func clamp(v, r float64) float64 { return math.Min(math.Max(v, -r), r) }
