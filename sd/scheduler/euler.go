package scheduler

import "math"

// veSchedule is the sigma-space schedule the Euler family shares: samples
// are x = x0 + σ_i·ε, the UNet sees x/sqrt(σ_i²+1), and σ ends at 0.
type veSchedule struct {
	base
	sigmas    []float64 // len(timesteps)+1, last 0
	initSigma float64
	pred      string
}

// newVESchedule builds diffusers' EulerDiscrete/EulerAncestral schedule:
// spaced (possibly fractional) timesteps, σ interpolated in the training
// sigma table at them, optionally re-spaced the Karras way.
func newVESchedule(name string, cfg Config, steps int, karras bool) veSchedule {
	spacing := cfg.spacing("linspace")
	ts := spacedTimesteps(spacing, cfg.NumTrainTimesteps, steps, cfg.StepsOffset, false)
	if spacing != "linspace" {
		for i := range ts {
			ts[i] = float64(float32(ts[i]))
		}
	}
	table := vpToVE(alphasCumprod(cfg))
	sigmas := make([]float64, steps, steps+1)
	for i, t := range ts {
		sigmas[i] = interp(t, table)
	}
	if karras {
		sigmas = karrasSigmas(sigmas[0], sigmas[steps-1], steps)
		logSigmas := logTable(table)
		for i, s := range sigmas {
			ts[i] = float64(float32(sigmaToT(s, logSigmas)))
		}
	}
	sigmas = roundF32(append(sigmas, 0))
	maxSigma := 0.0
	for _, s := range sigmas {
		maxSigma = math.Max(maxSigma, s)
	}
	initSigma := maxSigma
	if spacing == "leading" {
		initSigma = math.Sqrt(maxSigma*maxSigma + 1)
	}
	return veSchedule{base: newBase(name, steps, ts), sigmas: sigmas, initSigma: initSigma, pred: cfg.PredictionType}
}

func (v *veSchedule) InitNoiseSigma() float64 { return v.initSigma }

func (v *veSchedule) ScaleModelInput(dst, sample []float32, i int) {
	s := v.sigmas[i]
	scale := 1 / math.Sqrt(s*s+1)
	for j, x := range sample {
		dst[j] = float32(float64(x) * scale)
	}
}

func (v *veSchedule) AddNoise(dst, x0, noise []float32, i int) {
	addNoiseVP(dst, x0, noise, 1, v.sigmas[i])
}

// x0Combo reads the predicted clean sample off the VE sample at step i: the
// VP forms apply to x·α, the sample the UNet actually saw.
func (v *veSchedule) x0Combo(i int) combo {
	alpha, sigma := vpFromVE(v.sigmas[i])
	x0, _ := predictions(v.pred, alpha, sigma)
	return combo{x0.X * alpha, x0.M}
}

// euler is diffusers' EulerDiscreteScheduler (Karras et al. 2022, Algorithm
// 2 without churn): one Euler step of dx/dσ = (x - x0)/σ per model call.
type euler struct{ veSchedule }

var _ Scheduler = (*euler)(nil)

func newEuler(cfg Config, steps int) *euler {
	return &euler{newVESchedule(Euler, cfg, steps, cfg.UseKarrasSigmas)}
}

func (s *euler) Step(i int, modelOutput, sample []float32, _ Noise) error {
	if err := s.begin(i, modelOutput, sample); err != nil {
		return err
	}
	sigma, next := s.sigmas[i], s.sigmas[i+1]
	x0c := s.x0Combo(i)
	// x + (x - x0)/σ·(σ' - σ) = k·x + (1-k)·x0 with k = σ'/σ, and x0 is
	// itself linear in x and the model output.
	fold := lerpX0(next/sigma, x0c)
	for j, x := range sample {
		sample[j] = float32(fold.at(x, modelOutput[j]))
	}
	s.done(i, len(sample))
	return nil
}

// lerpX0 is k·x + (1-k)·x0 as a combination of x and the model output.
func lerpX0(k float64, x0 combo) combo {
	return combo{k + (1-k)*x0.X, (1 - k) * x0.M}
}
