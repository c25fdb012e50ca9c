package scheduler

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// Which schedulers draw noise, how often and how much.
func TestNoiseDraws(t *testing.T) {
	const steps = 6
	cases := []struct {
		name  string
		eta   float64
		calls int
	}{
		{EulerA, 0, steps},  // every step, the last included
		{DDIM, 1, steps},    // eta > 0: every step
		{DDIM, 0, 0},        // deterministic
		{LCM, 0, steps - 1}, // between steps, not after the last
		{Euler, 0, 0},       // no churn
		{DPMPP2M, 0, 0},     // ODE solver
		{DPMPP2MKarras, 0, 0},
		{PNDM, 0, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := sd15(t)
			cfg.Eta = c.eta
			s := mustNew(t, c.name, cfg, steps)
			noise := &countingNoise{seed: 42}
			x, eps := vectors(latentLen)
			run(t, s, 0, x, noise, func(_ int, _, out []float32) { copy(out, eps) })
			if len(noise.calls) != c.calls {
				t.Errorf("%d noise draws, want %d", len(noise.calls), c.calls)
			}
			for _, n := range noise.calls {
				if n != latentLen {
					t.Errorf("noise drawn with length %d, want %d", n, latentLen)
				}
			}
		})
	}
}

// The same noise sequence gives the same result; another one does not.
func TestStochasticDeterministic(t *testing.T) {
	for _, name := range []string{EulerA, LCM, DDIM} {
		t.Run(name, func(t *testing.T) {
			final := func(seed uint64) []float32 {
				cfg := sd15(t)
				cfg.Eta = 1
				s := mustNew(t, name, cfg, 5)
				x, eps := vectors(latentLen)
				run(t, s, 0, x, &countingNoise{seed: seed}, func(_ int, _, out []float32) { copy(out, eps) })
				return x
			}
			a, b, c := final(1), final(1), final(2)
			if !slices.Equal(a, b) {
				t.Error("same noise sequence, different results")
			}
			if slices.Equal(a, c) {
				t.Error("different noise sequences, same result")
			}
		})
	}
}

// One Euler ancestral step against the formula: with a model that predicts
// x0 exactly, x' = x0 + σ_down·ε + σ_up·z.
func TestEulerAncestralStep(t *testing.T) {
	s := mustNew(t, EulerA, sd15(t), 10)
	ts := s.Timesteps()
	from, to := refSigma(ts[0]), refSigma(ts[1])
	up := math.Sqrt(to * to * (from*from - to*to) / (from * from))
	down := math.Sqrt(to*to - up*up)
	x0, eps := vectors(16)
	z := make([]float32, 16)
	for j := range z {
		z[j] = float32(j%5) - 2
	}
	x := make([]float32, 16)
	s.AddNoise(x, x0, eps, 0)
	if err := s.Step(0, eps, x, fixedNoise{z}); err != nil {
		t.Fatal(err)
	}
	for j := range x {
		want := float64(x0[j]) + down*float64(eps[j]) + up*float64(z[j])
		if math.Abs(float64(x[j])-want) > 1e-4 {
			t.Errorf("[%d] = %v, want %v", j, x[j], want)
		}
	}
}

// One DDIM step with eta against Song et al.'s eq. 12, ᾱ derived here.
func TestDDIMEtaStep(t *testing.T) {
	const eta = 0.7
	cfg := sd15(t)
	cfg.Eta = eta
	s := mustNew(t, DDIM, cfg, 20) // 951 -> 901
	ab := refAlphaBar()
	a, ap := ab[951], ab[901]
	std := eta * math.Sqrt((1-ap)/(1-a)*(1-a/ap))
	x0, eps := vectors(16)
	z := make([]float32, 16)
	for j := range z {
		z[j] = float32(j%3) - 1
	}
	x := make([]float32, 16)
	s.AddNoise(x, x0, eps, 0)
	if err := s.Step(0, eps, x, fixedNoise{z}); err != nil {
		t.Fatal(err)
	}
	for j := range x {
		want := math.Sqrt(ap)*float64(x0[j]) + math.Sqrt(1-ap-std*std)*float64(eps[j]) + std*float64(z[j])
		if math.Abs(float64(x[j])-want) > 1e-4 {
			t.Errorf("[%d] = %v, want %v", j, x[j], want)
		}
	}
}

// One LCM step: denoised = c_skip·x + c_out·x0, then renoised to the next
// timestep with the supplied noise.
func TestLCMStep(t *testing.T) {
	s := mustNew(t, LCM, sd15(t), 4) // 999 -> 759
	ab := refAlphaBar()
	scaled := 9990.0
	cSkip := 0.25 / (scaled*scaled + 0.25)
	cOut := scaled / math.Sqrt(scaled*scaled+0.25)
	x0, eps := vectors(16)
	z := make([]float32, 16)
	for j := range z {
		z[j] = float32(j%7)/3 - 1
	}
	x := make([]float32, 16)
	s.AddNoise(x, x0, eps, 0)
	start := slices.Clone(x)
	if err := s.Step(0, eps, x, fixedNoise{z}); err != nil {
		t.Fatal(err)
	}
	for j := range x {
		denoised := cSkip*float64(start[j]) + cOut*float64(x0[j])
		want := math.Sqrt(ab[759])*denoised + math.Sqrt(1-ab[759])*float64(z[j])
		if math.Abs(float64(x[j])-want) > 1e-4 {
			t.Errorf("[%d] = %v, want %v", j, x[j], want)
		}
	}
}

func TestStepErrors(t *testing.T) {
	x, eps := vectors(8)
	t.Run("nil noise", func(t *testing.T) {
		s := mustNew(t, EulerA, sd15(t), 4)
		before := slices.Clone(x)
		if err := s.Step(0, eps, x, nil); !errors.Is(err, ErrNoNoise) {
			t.Errorf("err %v, want ErrNoNoise", err)
		}
		if !slices.Equal(x, before) {
			t.Error("sample changed by a failed step")
		}
	})
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			s := mustNew(t, name, sd15(t), 4)
			noise := &countingNoise{}
			n := len(s.Timesteps())
			if err := s.Step(n, eps, slices.Clone(x), noise); !errors.Is(err, ErrBadStep) {
				t.Errorf("step %d of %d: err %v, want ErrBadStep", n, n, err)
			}
			if err := s.Step(-1, eps, slices.Clone(x), noise); !errors.Is(err, ErrBadStep) {
				t.Errorf("step -1: err %v, want ErrBadStep", err)
			}
			if err := s.Step(0, eps[:3], slices.Clone(x), noise); !errors.Is(err, ErrLengthMismatch) {
				t.Errorf("short model output: err %v, want ErrLengthMismatch", err)
			}
			if err := s.Step(0, eps, slices.Clone(x), noise); err != nil {
				t.Fatalf("step 0: %v", err)
			}
			if err := s.Step(2, eps, slices.Clone(x), noise); !errors.Is(err, ErrBadStep) {
				t.Errorf("step 2 after 0: err %v, want ErrBadStep", err)
			}
			if err := s.Step(1, eps[:4], x[:4], noise); !errors.Is(err, ErrLengthMismatch) {
				t.Errorf("latents shrank: err %v, want ErrLengthMismatch", err)
			}
			if err := s.Step(1, eps, slices.Clone(x), noise); err != nil {
				t.Errorf("step 1: %v", err)
			}
		})
	}
}

// LCM's boundary condition at small timesteps, where it matters: c_skip = 1
// and c_out = 0 at t = 0, and at 10t = σ_d = 0.5, c_skip = ½, c_out = 1/√2.
func TestLCMBoundary(t *testing.T) {
	s := mustNew(t, LCM, sd15(t), 4).(*lcm)
	cases := []struct{ t, skip, out float64 }{
		{0, 1, 0},
		{0.05, 0.5, 1 / math.Sqrt2},
		{999, 0.25 / (9990*9990 + 0.25), 9990 / math.Sqrt(9990*9990+0.25)},
	}
	for _, c := range cases {
		skip, out := s.boundary(c.t)
		if !relClose(skip, c.skip, 1e-12) || !relClose(out, c.out, 1e-12) && c.out != 0 || c.out == 0 && out != 0 {
			t.Errorf("boundary(%v) = %v, %v; want %v, %v", c.t, skip, out, c.skip, c.out)
		}
	}
}
