package scheduler

import "math"

// ddim is diffusers' DDIMScheduler: deterministic for eta = 0, adding
// eta-weighted fresh noise otherwise (Song et al. 2020, eq. 12).
type ddim struct {
	base
	alphaBar      []float64
	finalAlphaBar float64 // ᾱ used past t = 0
	stride        int     // T div steps: diffusers' previous-timestep offset, whatever the spacing
	pred          string
	clip          bool
	clipRange     float64
	eta           float64
	noise         []float32
}

var _ Scheduler = (*ddim)(nil)

func newDDIM(cfg Config, steps int) *ddim {
	ab := alphasCumprod(cfg)
	ts := spacedTimesteps(cfg.spacing("leading"), cfg.NumTrainTimesteps, steps, cfg.StepsOffset, true)
	s := &ddim{
		base:          newBase(DDIM, steps, ts),
		alphaBar:      ab,
		finalAlphaBar: ab[0],
		stride:        cfg.NumTrainTimesteps / steps,
		pred:          cfg.PredictionType,
		clip:          boolOr(cfg.ClipSample, true),
		clipRange:     cfg.ClipSampleRange,
		eta:           cfg.Eta,
	}
	if boolOr(cfg.SetAlphaToOne, true) {
		s.finalAlphaBar = 1
	}
	return s
}

func (s *ddim) InitNoiseSigma() float64 { return 1 }

func (s *ddim) ScaleModelInput(dst, sample []float32, _ int) { copyInto(dst, sample) }

func (s *ddim) AddNoise(dst, x0, noise []float32, i int) {
	alpha, sigma := vpFromAlphaBar(s.alphaBar[int(s.timesteps[i])])
	addNoiseVP(dst, x0, noise, alpha, sigma)
}

// alphaBarAt is ᾱ_t, or the final ᾱ for t < 0.
func (s *ddim) alphaBarAt(t int) float64 {
	if t < 0 {
		return s.finalAlphaBar
	}
	return s.alphaBar[t]
}

func (s *ddim) Step(i int, modelOutput, sample []float32, noise Noise) error {
	if err := s.begin(i, modelOutput, sample); err != nil {
		return err
	}
	t := int(s.timesteps[i])
	abT, abPrev := s.alphaBarAt(t), s.alphaBarAt(t-s.stride)
	alpha, sigma := vpFromAlphaBar(abT)
	x0c, epsc := predictions(s.pred, alpha, sigma)

	variance := (1 - abPrev) / (1 - abT) * (1 - abT/abPrev)
	std := s.eta * math.Sqrt(variance)
	toX0 := math.Sqrt(abPrev)
	toEps := math.Sqrt(max(1-abPrev-std*std, 0))

	var z []float32
	if s.eta > 0 {
		var err error
		if z, err = draw(&s.noise, len(sample), noise); err != nil {
			return err
		}
	}
	if s.clip {
		for j, x := range sample {
			m := modelOutput[j]
			x0 := clamp(x0c.at(x, m), s.clipRange)
			sample[j] = float32(toX0*x0 + toEps*epsc.at(x, m))
		}
	} else {
		// Unclipped, the update is linear in x and the model output.
		fold := combo{toX0*x0c.X + toEps*epsc.X, toX0*x0c.M + toEps*epsc.M}
		for j, x := range sample {
			sample[j] = float32(fold.at(x, modelOutput[j]))
		}
	}
	for j, v := range z { // nil when eta = 0
		sample[j] = float32(float64(sample[j]) + std*float64(v))
	}
	s.done(i, len(sample))
	return nil
}
