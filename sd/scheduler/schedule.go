package scheduler

import (
	"math"
)

// alphasCumprod returns ᾱ_t = ∏_{s<=t} (1 - β_s) for every training step.
// diffusers builds the betas in float32 with torch and takes the cumulative
// product with a float64 accumulator stored back as float32; we round at the
// same places so derived sigmas agree with diffusers' to float32 precision.
func alphasCumprod(cfg Config) []float64 {
	n := cfg.NumTrainTimesteps
	betas := make([]float32, n)
	switch {
	case cfg.TrainedBetas != nil:
		for i, b := range cfg.TrainedBetas {
			betas[i] = float32(b)
		}
	case cfg.BetaSchedule == "linear":
		for i, v := range linspace(cfg.BetaStart, cfg.BetaEnd, n) {
			betas[i] = float32(v)
		}
	default: // scaled_linear: linear in sqrt(beta), then squared in float32
		for i, v := range linspace(math.Sqrt(cfg.BetaStart), math.Sqrt(cfg.BetaEnd), n) {
			r := float32(v)
			betas[i] = r * r
		}
	}
	out := make([]float64, n)
	acc := 1.0
	for i, b := range betas {
		acc *= float64(1 - b)
		out[i] = float64(float32(acc))
	}
	return out
}

// vpToVE is diffusers' sigma table: σ_t = sqrt((1-ᾱ_t)/ᾱ_t), the noise level
// of the variance-exploding form x = x0 + σ·ε, computed in float32 as torch does.
func vpToVE(alphasCumprod []float64) []float64 {
	out := make([]float64, len(alphasCumprod))
	for i, a := range alphasCumprod {
		a32 := float32(a)
		out[i] = float64(float32(math.Sqrt(float64((1 - a32) / a32))))
	}
	return out
}

// linspace is numpy.linspace(start, stop, num) with endpoint=True.
func linspace(start, stop float64, num int) []float64 {
	out := make([]float64, num)
	if num == 1 {
		out[0] = start
		return out
	}
	step := (stop - start) / float64(num-1)
	for i := range out {
		out[i] = float64(i)*step + start
	}
	out[num-1] = stop
	return out
}

// spacedTimesteps returns the descending training timesteps for steps
// inference steps, as DDIM, Euler and PNDM space them in diffusers:
//
//	leading:  (steps-1-i)·(T div steps) + steps_offset
//	linspace: round(linspace(0, T-1, steps)) reversed (numpy rounds half to even)
//	trailing: round(T - i·T/steps) - 1
//
// Euler keeps linspace values fractional (float32), hence roundLinspace.
func spacedTimesteps(spacing string, trainSteps, steps, offset int, roundLinspace bool) []float64 {
	out := make([]float64, steps)
	switch spacing {
	case "leading":
		ratio := trainSteps / steps
		for i := range out {
			out[i] = float64((steps-1-i)*ratio + offset)
		}
	case "linspace":
		lin := linspace(0, float64(trainSteps-1), steps)
		for i := range out {
			v := lin[steps-1-i]
			if roundLinspace {
				v = math.RoundToEven(v)
			} else {
				v = float64(float32(v))
			}
			out[i] = v
		}
	case "trailing":
		out = trailingTimesteps(float64(trainSteps), trainSteps, steps)
	}
	return out
}

// trailingTimesteps is numpy.round(numpy.arange(from, 0, -T/steps)) - 1, cut
// to steps values. (numpy's arange can yield steps+1 values through rounding
// for some counts, e.g. 61; diffusers then carries a stray timestep -1. We keep
// exactly steps.)
func trailingTimesteps(from float64, trainSteps, steps int) []float64 {
	out := make([]float64, steps)
	ratio := float64(trainSteps) / float64(steps)
	for i := range out {
		out[i] = math.RoundToEven(from-float64(i)*ratio) - 1
	}
	return out
}

// interp is numpy.interp(x, [0, 1, ..., len(table)-1], table).
func interp(x float64, table []float64) float64 {
	last := len(table) - 1
	switch {
	case x <= 0:
		return table[0]
	case x >= float64(last):
		return table[last]
	}
	lo := int(math.Floor(x))
	frac := x - float64(lo)
	if frac == 0 {
		return table[lo]
	}
	return table[lo] + (table[lo+1]-table[lo])*frac
}

// karrasSigmas spaces n noise levels between sigmaMax and sigmaMin uniformly
// in σ^(1/ρ) with ρ = 7 (Karras et al. 2022, eq. 5).
func karrasSigmas(sigmaMax, sigmaMin float64, n int) []float64 {
	const rho = 7.0
	maxInv := math.Pow(sigmaMax, 1/rho)
	minInv := math.Pow(sigmaMin, 1/rho)
	out := make([]float64, n)
	for i, r := range linspace(0, 1, n) {
		out[i] = math.Pow(maxInv+r*(minInv-maxInv), rho)
	}
	return out
}

// sigmaToT maps a noise level back to a fractional training timestep by
// linear interpolation in log σ, as diffusers' _sigma_to_t does. logSigmas
// is log of the sigma table, ascending with t.
func sigmaToT(sigma float64, logSigmas []float64) float64 {
	logSigma := math.Log(math.Max(sigma, 1e-10))
	low := 0 // the last index whose log σ is <= logSigma; 0 when none is
	for j, ls := range logSigmas {
		if logSigma-ls >= 0 {
			low = j
		}
	}
	low = min(low, len(logSigmas)-2)
	lo, hi := logSigmas[low], logSigmas[low+1]
	w := (lo - logSigma) / (lo - hi)
	w = math.Min(math.Max(w, 0), 1)
	return (1-w)*float64(low) + w*float64(low+1)
}

// logTable is numpy.log of a float32 sigma table (float32 results).
func logTable(sigmas []float64) []float64 {
	out := make([]float64, len(sigmas))
	for i, s := range sigmas {
		out[i] = float64(float32(math.Log(s)))
	}
	return out
}

// roundF32 rounds every value to float32, as diffusers stores its sigmas.
func roundF32(v []float64) []float64 {
	for i := range v {
		v[i] = float64(float32(v[i]))
	}
	return v
}
