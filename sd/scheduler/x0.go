package scheduler

import "fmt"

// PredictX0 writes into dst the clean sample the scheduler reads off the
// (guided) model output at step i, given the sample before Step(i) runs:
// what a preview of the finished image looks like at that point. It
// changes no scheduler state, so it may be called between any two steps.
// LCM's estimate is its boundary-conditioned "denoised" sample, the one
// its Step keeps.
func PredictX0(s Scheduler, dst, modelOutput, sample []float32, i int) error {
	if len(dst) < len(sample) || len(modelOutput) != len(sample) {
		return fmt.Errorf("%w: dst %d, model output %d, sample %d", ErrLengthMismatch, len(dst), len(modelOutput), len(sample))
	}
	ts := s.Timesteps()
	if i < 0 || i >= len(ts) {
		return fmt.Errorf("%w: %d, want 0..%d", ErrBadStep, i, len(ts)-1)
	}
	var c combo
	switch s := s.(type) {
	case *euler:
		c = s.x0Combo(i)
	case *eulerAncestral:
		c = s.x0Combo(i)
	case *dpmSolver:
		alpha, sigma := vpFromVE(s.sigmas[i])
		c, _ = predictions(s.pred, alpha, sigma)
	case *ddim:
		c = vpX0(s.pred, s.alphaBarAt(int(ts[i])))
	case *pndm:
		c = vpX0(s.pred, s.alphaBarAt(int(ts[i])))
	case *lcm:
		x0 := vpX0(s.pred, s.alphaBar[int(ts[i])])
		cSkip, cOut := s.boundary(ts[i])
		c = combo{cOut*x0.X + cSkip, cOut * x0.M}
	default:
		return fmt.Errorf("%w: no clean-sample estimate for %s", ErrUnsupported, s.Name())
	}
	for j, x := range sample {
		dst[j] = float32(c.at(x, modelOutput[j]))
	}
	return nil
}

// vpX0 reads x0 off a variance-preserving sample at noise level ᾱ.
func vpX0(pred string, alphaBar float64) combo {
	alpha, sigma := vpFromAlphaBar(alphaBar)
	x0, _ := predictions(pred, alpha, sigma)
	return x0
}
