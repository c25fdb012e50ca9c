package scheduler

import (
	"fmt"
	"math"
)

// lcm is diffusers' LCMScheduler (Luo et al. 2023, multistep latent
// consistency sampling). Each step maps x_t to a denoised estimate through
// the consistency boundary condition
//
//	denoised = c_skip(t)·x_t + c_out(t)·x0,
//	c_skip = σ_d²/((10t)² + σ_d²), c_out = 10t/sqrt((10t)² + σ_d²), σ_d = 0.5,
//
// (10 being timestep_scaling) and then, except on the last step, noises it
// afresh to the next timestep: x_prev = sqrt(ᾱ_prev)·denoised + sqrt(1-ᾱ_prev)·z.
// Timesteps are a skipping subset of the original_inference_steps (50) step
// distillation schedule: 999, 979, ..., 19.
type lcm struct {
	base
	alphaBar  []float64
	pred      string
	clip      bool
	clipRange float64
	scaling   float64
	noise     []float32
}

var _ Scheduler = (*lcm)(nil)

func newLCM(cfg Config, steps int) (*lcm, error) {
	orig := cfg.OriginalInferenceSteps
	if orig > cfg.NumTrainTimesteps {
		return nil, fmt.Errorf("%w: original_inference_steps %d exceeds num_train_timesteps %d", ErrBadConfig, orig, cfg.NumTrainTimesteps)
	}
	if steps > orig {
		return nil, fmt.Errorf("%w: lcm takes at most original_inference_steps = %d, got %d", ErrBadSteps, orig, steps)
	}
	// The distillation schedule k-1, 2k-1, ..., orig·k-1 with k = T div orig,
	// read from the top at floor(j·orig/steps).
	k := cfg.NumTrainTimesteps / orig
	ts := make([]float64, steps)
	stride := float64(orig) / float64(steps)
	for j := range ts {
		idx := int(math.Floor(float64(j) * stride)) // index into the descending schedule
		ts[j] = float64((orig-idx)*k - 1)
	}
	return &lcm{
		base:      newBase(LCM, steps, ts),
		alphaBar:  alphasCumprod(cfg),
		pred:      cfg.PredictionType,
		clip:      boolOr(cfg.ClipSample, false),
		clipRange: cfg.ClipSampleRange,
		scaling:   cfg.TimestepScaling,
	}, nil
}

func (s *lcm) InitNoiseSigma() float64 { return 1 }

func (s *lcm) ScaleModelInput(dst, sample []float32, _ int) { copyInto(dst, sample) }

func (s *lcm) AddNoise(dst, x0, noise []float32, i int) {
	alpha, sigma := vpFromAlphaBar(s.alphaBar[int(s.timesteps[i])])
	addNoiseVP(dst, x0, noise, alpha, sigma)
}

// boundary returns LCM's c_skip and c_out at timestep t.
func (s *lcm) boundary(t float64) (cSkip, cOut float64) {
	const sigmaData2 = 0.25 // σ_d = 0.5
	scaled := t * s.scaling
	return sigmaData2 / (scaled*scaled + sigmaData2), scaled / math.Sqrt(scaled*scaled+sigmaData2)
}

func (s *lcm) Step(i int, modelOutput, sample []float32, noise Noise) error {
	if err := s.begin(i, modelOutput, sample); err != nil {
		return err
	}
	last := i == len(s.timesteps)-1
	var z []float32
	toDenoised, toNoise := 1.0, 0.0
	if !last {
		var err error
		if z, err = draw(&s.noise, len(sample), noise); err != nil {
			return err
		}
		abPrev := s.alphaBar[int(s.timesteps[i+1])]
		toDenoised, toNoise = vpFromAlphaBar(abPrev)
	}
	t := s.timesteps[i]
	alpha, sigma := vpFromAlphaBar(s.alphaBar[int(t)])
	x0c, _ := predictions(s.pred, alpha, sigma)
	cSkip, cOut := s.boundary(t)
	if s.clip {
		for j, x := range sample {
			x0 := clamp(x0c.at(x, modelOutput[j]), s.clipRange)
			sample[j] = float32(toDenoised * (cOut*x0 + cSkip*float64(x)))
		}
	} else {
		// Unclipped, the whole update is linear in x and the model output.
		fold := combo{toDenoised * (cOut*x0c.X + cSkip), toDenoised * cOut * x0c.M}
		for j, x := range sample {
			sample[j] = float32(fold.at(x, modelOutput[j]))
		}
	}
	for j, v := range z { // nil on the last step
		sample[j] = float32(float64(sample[j]) + toNoise*float64(v))
	}
	s.done(i, len(sample))
	return nil
}
