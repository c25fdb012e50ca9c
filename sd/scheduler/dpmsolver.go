package scheduler

import "math"

// dpmSolver is diffusers' DPMSolverMultistepScheduler as DPM-Solver++(2M)
// (Lu et al. 2022): solver_order 2, algorithm_type dpmsolver++, midpoint
// solver, final sigma 0. It works on data predictions x0 and keeps the
// previous step's x0 as history. The first step and the last one (which
// lands on σ = 0) are first order, as diffusers does with lower_order_final.
//
// With VP coefficients α_t, σ_t and λ_t = log(α_t/σ_t) = -log(s_t) where s
// is the VE sigma, the update from s0 to t with step h = λ_t - λ_s0 is
//
//	x_t = (σ_t/σ_s0)·x - α_t·(e^{-h} - 1)·(D0 + ½·D1),  e^{-h} = s_t/s_s0,
//
// D0 the current x0 and D1 = (D0 - previous x0)·h/h_0 (zero for first order).
type dpmSolver struct {
	base
	sigmas []float64 // VE sigmas, len(timesteps)+1, last 0
	pred   string
	x0     []float32 // this step's data prediction
	prevX0 []float32 // the previous step's
}

var _ Scheduler = (*dpmSolver)(nil)

func newDPMSolver(cfg Config, steps int, karras bool) *dpmSolver {
	table := vpToVE(alphasCumprod(cfg))
	ts := dpmTimesteps(cfg, steps)
	sigmas := make([]float64, steps, steps+1)
	name := DPMPP2M
	if karras {
		name = DPMPP2MKarras
		// Karras spacing over the whole training range, timesteps rounded
		// back from the sigmas.
		sigmas = karrasSigmas(table[len(table)-1], table[0], steps)
		logSigmas := logTable(table)
		for i, s := range sigmas {
			ts[i] = math.RoundToEven(sigmaToT(s, logSigmas))
		}
	} else {
		for i, t := range ts {
			sigmas[i] = interp(t, table)
		}
	}
	return &dpmSolver{
		base:   newBase(name, steps, ts),
		sigmas: roundF32(append(sigmas, 0)),
		pred:   cfg.PredictionType,
	}
}

// dpmTimesteps spaces steps+1 points and drops the last (t = 0 side), as
// DPMSolverMultistepScheduler does; its default spacing is linspace.
func dpmTimesteps(cfg Config, steps int) []float64 {
	T := cfg.NumTrainTimesteps
	ts := make([]float64, steps)
	switch cfg.spacing("linspace") {
	case "linspace":
		lin := linspace(0, float64(T-1), steps+1)
		for i := range ts {
			ts[i] = math.RoundToEven(lin[steps-i])
		}
	case "leading":
		ratio := T / (steps + 1)
		for i := range ts {
			ts[i] = float64((steps-i)*ratio + cfg.StepsOffset)
		}
	case "trailing":
		ts = trailingTimesteps(float64(T), T, steps)
	}
	return ts
}

func (s *dpmSolver) InitNoiseSigma() float64 { return 1 }

func (s *dpmSolver) ScaleModelInput(dst, sample []float32, _ int) { copyInto(dst, sample) }

func (s *dpmSolver) AddNoise(dst, x0, noise []float32, i int) {
	alpha, sigma := vpFromVE(s.sigmas[i])
	addNoiseVP(dst, x0, noise, alpha, sigma)
}

func (s *dpmSolver) Step(i int, modelOutput, sample []float32, _ Noise) error {
	if err := s.begin(i, modelOutput, sample); err != nil {
		return err
	}
	n := len(sample)
	s.x0 = grow(s.x0, n)
	s.prevX0 = grow(s.prevX0, n)

	sS0, sT := s.sigmas[i], s.sigmas[i+1]
	alphaS0, sigmaS0 := vpFromVE(sS0)
	alphaT, sigmaT := vpFromVE(sT)
	x0c, _ := predictions(s.pred, alphaS0, sigmaS0)

	keep := sigmaT / sigmaS0
	toX0 := alphaT * (1 - sT/sS0) // -α_t·(e^{-h} - 1)
	// D1 weight ½·h/h_0; zero on the first call and on the step to σ = 0.
	d1 := 0.0
	if s.calls > 0 && sT > 0 {
		sS1 := s.sigmas[i-1]
		h := math.Log(sS0 / sT)
		h0 := math.Log(sS1 / sS0)
		d1 = 0.5 * h / h0
	}
	for j, x := range sample {
		x0 := float32(x0c.at(x, modelOutput[j]))
		s.x0[j] = x0
		d := float64(x0) + d1*float64(x0-s.prevX0[j])
		sample[j] = float32(keep*float64(x) + toX0*d)
	}
	s.x0, s.prevX0 = s.prevX0, s.x0
	s.done(i, n)
	return nil
}
