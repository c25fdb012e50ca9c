package scheduler

import (
	"fmt"
	"math"
)

// pndm is diffusers' PNDMScheduler (Liu et al. 2022, pseudo numerical
// methods). With skip_prk_steps (Stable Diffusion's setting) it is PLMS: a
// linear multistep method on ε whose first step is run twice, once as an
// Euler-like predictor and once with the averaged ε (hence the repeated
// timestep: 981, 961, 961, 941, ... for 50 steps). Without it, three
// pseudo Runge-Kutta steps (12 model calls) warm the history up first.
//
// The transfer from t to t' with a combined ε is the PNDM update
//
//	x' = sqrt(ᾱ'/ᾱ)·x - (ᾱ' - ᾱ)·ε / (ᾱ·sqrt(1-ᾱ') + sqrt(ᾱ(1-ᾱ)ᾱ')).
type pndm struct {
	base
	alphaBar      []float64
	finalAlphaBar float64
	stride        int // T div steps
	prkSteps      int // leading model calls that are PRK
	pred          string

	ets      [4][]float32 // ring of past model outputs, newest at etsHead-1
	etsHead  int
	etsCount int
	// curSample is the sample at the start of a PLMS pair or PRK block;
	// curOutput the PRK running sum of weighted model outputs.
	curSample []float32
	curOutput []float32
	mixed     []float32 // the combined model output of this step
}

var _ Scheduler = (*pndm)(nil)

func newPNDM(cfg Config, steps int) (*pndm, error) {
	if cfg.PredictionType == "sample" {
		return nil, fmt.Errorf("%w: pndm with prediction_type sample", ErrUnsupported)
	}
	T := cfg.NumTrainTimesteps
	// PNDM keeps its base schedule ascending.
	asc := make([]float64, steps)
	spacing := cfg.spacing("leading")
	switch spacing {
	case "linspace", "trailing":
		desc := spacedTimesteps(spacing, T, steps, cfg.StepsOffset, true)
		for i, t := range desc {
			asc[steps-1-i] = t
		}
	default:
		ratio := T / steps
		for i := range asc {
			asc[i] = float64(i*ratio + cfg.StepsOffset)
		}
	}
	var ts []float64
	prk := 0
	if boolOr(cfg.SkipPRKSteps, false) {
		// asc[:-1] + asc[-2:-1] + asc[-1:], reversed: the second-highest
		// timestep appears twice.
		ts = make([]float64, 0, steps+1)
		ts = append(ts, asc[steps-1])
		if steps > 1 {
			ts = append(ts, asc[steps-2])
		}
		for i := steps - 2; i >= 0; i-- {
			ts = append(ts, asc[i])
		}
	} else {
		if steps < 4 {
			return nil, fmt.Errorf("%w: pndm without skip_prk_steps needs at least 4 steps, got %d", ErrBadSteps, steps)
		}
		ts = prkTimesteps(asc, T/steps/2)
		prk = len(ts)
		for i := steps - 4; i >= 0; i-- { // asc[:-3] reversed
			ts = append(ts, asc[i])
		}
	}
	s := &pndm{
		base:     newBase(PNDM, steps, ts),
		alphaBar: alphasCumprod(cfg),
		stride:   T / steps,
		prkSteps: prk,
		pred:     cfg.PredictionType,
	}
	s.finalAlphaBar = s.alphaBar[0]
	if boolOr(cfg.SetAlphaToOne, false) {
		s.finalAlphaBar = 1
	}
	return s, nil
}

// prkTimesteps is diffusers' Runge-Kutta warm-up schedule over the last
// four base timesteps: each t and t+half, every inner point doubled,
// highest first (981, 971, 971, 961, 961, ..., 921 for SD at 50 steps).
func prkTimesteps(asc []float64, half int) []float64 {
	tail := asc[len(asc)-4:]
	var pts []float64
	for _, t := range tail {
		pts = append(pts, t, t+float64(half))
	}
	pts = pts[:len(pts)-1]
	var doubled []float64
	for _, p := range pts {
		doubled = append(doubled, p, p)
	}
	doubled = doubled[1 : len(doubled)-1]
	out := make([]float64, len(doubled))
	for i, p := range doubled {
		out[len(doubled)-1-i] = p
	}
	return out
}

func (s *pndm) InitNoiseSigma() float64 { return 1 }

func (s *pndm) ScaleModelInput(dst, sample []float32, _ int) { copyInto(dst, sample) }

func (s *pndm) AddNoise(dst, x0, noise []float32, i int) {
	alpha, sigma := vpFromAlphaBar(s.alphaBar[int(s.timesteps[i])])
	addNoiseVP(dst, x0, noise, alpha, sigma)
}

func (s *pndm) alphaBarAt(t int) float64 {
	if t < 0 {
		return s.finalAlphaBar
	}
	return s.alphaBar[t]
}

// pushEts appends a model output to the history ring (keeping four).
func (s *pndm) pushEts(m []float32) {
	copy(s.ets[s.etsHead], m)
	s.etsHead = (s.etsHead + 1) % len(s.ets)
	s.etsCount = min(s.etsCount+1, len(s.ets))
}

// etsAt returns the k-th newest stored output (k = 1 is the newest).
func (s *pndm) etsAt(k int) []float32 {
	return s.ets[(s.etsHead-k+2*len(s.ets))%len(s.ets)]
}

func (s *pndm) Step(i int, modelOutput, sample []float32, _ Noise) error {
	if err := s.begin(i, modelOutput, sample); err != nil {
		return err
	}
	n := len(sample)
	if s.calls == 0 { // size every buffer now so later steps allocate nothing
		for k := range s.ets {
			s.ets[k] = grow(s.ets[k], n)
		}
		s.curSample = grow(s.curSample, n)
		s.curOutput = grow(s.curOutput, n)
		s.mixed = grow(s.mixed, n)
	}
	if s.calls < s.prkSteps {
		s.stepPRK(i, modelOutput, sample)
	} else {
		s.stepPLMS(i, modelOutput, sample)
	}
	s.done(i, n)
	return nil
}

// stepPLMS is one linear multistep (Adams-Bashforth) update on ε.
func (s *pndm) stepPLMS(i int, m, sample []float32) {
	t := int(s.timesteps[i])
	prev := t - s.stride
	c := s.calls
	if c == 1 {
		// Second half of the first step: redo t+stride -> t with the mean ε.
		prev, t = t, t+s.stride
	} else {
		s.pushEts(m)
	}
	from, mixed := sample, s.mixed
	switch {
	case s.etsCount == 1 && c == 0:
		copy(s.curSample, sample)
		copy(mixed, m)
	case s.etsCount == 1 && c == 1:
		from = s.curSample
		mix(mixed, []float64{0.5, 0.5}, m, s.etsAt(1))
	case s.etsCount == 2:
		mix(mixed, []float64{3.0 / 2, -1.0 / 2}, s.etsAt(1), s.etsAt(2))
	case s.etsCount == 3:
		mix(mixed, []float64{23.0 / 12, -16.0 / 12, 5.0 / 12}, s.etsAt(1), s.etsAt(2), s.etsAt(3))
	default:
		mix(mixed, []float64{55.0 / 24, -59.0 / 24, 37.0 / 24, -9.0 / 24}, s.etsAt(1), s.etsAt(2), s.etsAt(3), s.etsAt(4))
	}
	s.transfer(t, prev, from, mixed, sample)
}

// stepPRK is one of the four stages of a pseudo Runge-Kutta step: each
// stage moves the block's start sample with its own model output, and the
// last one with the RK4 average (1/6, 1/3, 1/3, 1/6) of the four.
func (s *pndm) stepPRK(i int, m, sample []float32) {
	c := s.calls
	diff := 0
	if c%2 == 0 {
		diff = s.stride / 2
	}
	prev := int(s.timesteps[i]) - diff
	t := int(s.timesteps[c/4*4])
	eps := m
	switch c % 4 {
	case 0:
		copy(s.curSample, sample)
		s.pushEts(m)
		mix(s.curOutput, []float64{1.0 / 6}, m)
	case 1, 2:
		mix(s.curOutput, []float64{1, 1.0 / 3}, s.curOutput, m)
	case 3:
		mix(s.mixed, []float64{1, 1.0 / 6}, s.curOutput, m)
		eps = s.mixed
	}
	s.transfer(t, prev, s.curSample, eps, sample)
}

// mix writes Σ w[k]·src[k] into dst (dst may be one of the sources).
func mix(dst []float32, w []float64, src ...[]float32) {
	for j := range dst {
		acc := 0.0
		for k, v := range src {
			acc += w[k] * float64(v[j])
		}
		dst[j] = float32(acc)
	}
}

// transfer writes into dst the PNDM update of from, from timestep t to
// prev, with the model output out (ε, or v converted to ε here).
func (s *pndm) transfer(t, prev int, from, out, dst []float32) {
	ab, abPrev := s.alphaBarAt(t), s.alphaBarAt(prev)
	keep := math.Sqrt(abPrev / ab)
	denom := ab*math.Sqrt(1-abPrev) + math.Sqrt(ab*(1-ab)*abPrev)
	toEps := -(abPrev - ab) / denom
	alpha, sigma := vpFromAlphaBar(ab)
	_, epsc := predictions(s.pred, alpha, sigma)
	fold := combo{keep + toEps*epsc.X, toEps * epsc.M}
	for j, x := range from {
		dst[j] = float32(fold.at(x, out[j]))
	}
}
