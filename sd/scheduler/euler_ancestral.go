package scheduler

import "math"

// eulerAncestral is diffusers' EulerAncestralDiscreteScheduler: an Euler
// step down to σ_down followed by fresh noise of size σ_up, where
// σ_down² + σ_up² = σ_next². It draws noise on every step, the last included.
type eulerAncestral struct {
	veSchedule
	noise []float32
}

var _ Scheduler = (*eulerAncestral)(nil)

func newEulerAncestral(cfg Config, steps int) *eulerAncestral {
	// diffusers' EulerAncestral has no Karras option.
	return &eulerAncestral{veSchedule: newVESchedule(EulerA, cfg, steps, false)}
}

func (s *eulerAncestral) Step(i int, modelOutput, sample []float32, noise Noise) error {
	if err := s.begin(i, modelOutput, sample); err != nil {
		return err
	}
	z, err := draw(&s.noise, len(sample), noise)
	if err != nil {
		return err
	}
	from, to := s.sigmas[i], s.sigmas[i+1]
	up := math.Sqrt(to * to * (from*from - to*to) / (from * from))
	down := math.Sqrt(max(to*to-up*up, 0))
	x0c := s.x0Combo(i)
	fold := lerpX0(down/from, x0c) // the Euler step down to σ_down
	for j, x := range sample {
		sample[j] = float32(fold.at(x, modelOutput[j]) + up*float64(z[j]))
	}
	s.done(i, len(sample))
	return nil
}
