package scheduler

import (
	"math"
	"testing"
)

// sd15JSON is Stable Diffusion 1.5's scheduler/scheduler_config.json.
const sd15JSON = `{"_class_name":"PNDMScheduler","_diffusers_version":"0.6.0","beta_end":0.012,
"beta_schedule":"scaled_linear","beta_start":0.00085,"num_train_timesteps":1000,
"set_alpha_to_one":false,"skip_prk_steps":true,"steps_offset":1,"clip_sample":false,"trained_betas":null}`

func sd15(t testing.TB) Config {
	t.Helper()
	cfg, err := ParseConfig([]byte(sd15JSON))
	if err != nil {
		t.Fatalf("ParseConfig(sd15): %v", err)
	}
	return cfg
}

func mustNew(t testing.TB, name string, cfg Config, steps int) Scheduler {
	t.Helper()
	s, err := New(name, cfg, steps)
	if err != nil {
		t.Fatalf("New(%q, %d): %v", name, steps, err)
	}
	return s
}

// The reference schedule below is derived straight from the formulas in
// float64, independently of the package code (which rounds to float32 the
// way torch does); comparisons therefore allow ~1e-5 relative error.

// refAlphaBar is ᾱ_t = ∏_{s<=t}(1 - β_s), β_s = (√β0 + s/(T-1)·(√β1 - √β0))².
func refAlphaBar() []float64 {
	const T = 1000
	lo, hi := math.Sqrt(0.00085), math.Sqrt(0.012)
	out := make([]float64, T)
	prod := 1.0
	for s := range T {
		r := lo + float64(s)/float64(T-1)*(hi-lo)
		prod *= 1 - r*r
		out[s] = prod
	}
	return out
}

// refSigma is the VE noise level σ(t) = sqrt((1-ᾱ)/ᾱ) at a possibly
// fractional timestep, linear between integer timesteps.
func refSigma(t float64) float64 {
	ab := refAlphaBar()
	at := func(i int) float64 { return math.Sqrt((1 - ab[i]) / ab[i]) }
	lo := int(math.Floor(t))
	if lo < 0 {
		return at(0)
	}
	if lo >= len(ab)-1 {
		return at(len(ab) - 1)
	}
	f := t - float64(lo)
	return at(lo)*(1-f) + at(lo+1)*f
}

func relClose(got, want, tol float64) bool {
	return math.Abs(got-want) <= tol*math.Max(math.Abs(want), 1e-12)
}

// vectors returns deterministic test latents: a "clean image" x0 in [-1, 1]
// and a unit-ish noise ε.
func vectors(n int) (x0, eps []float32) {
	x0, eps = make([]float32, n), make([]float32, n)
	for i := range n {
		x0[i] = float32(math.Sin(float64(i)*0.37) * 0.9)
		eps[i] = float32(math.Cos(float64(i)*1.71+0.3) * 1.3)
	}
	return x0, eps
}

// level reads the noise level of step i off AddNoise: it returns a, b with
// AddNoise(x0, ε) = a·x0 + b·ε, and the VP pair α = a/r, σ = b/r, r = √(a²+b²)
// (r = 1 for VP schedulers, √(1+s²) for the VE Euler family).
func level(s Scheduler, i int) (a, b, alpha, sigma float64) {
	dst := make([]float32, 2)
	s.AddNoise(dst, []float32{1, 0}, []float32{0, 1}, i)
	a, b = float64(dst[0]), float64(dst[1])
	r := math.Hypot(a, b)
	return a, b, a / r, b / r
}

// oracle returns the model output a perfect model would give at step i for
// the clean sample x0, in the scheduler's prediction type.
func oracle(s Scheduler, pred string, i int, sample, x0, out []float32) {
	a, b, alpha, sigma := level(s, i)
	r := math.Hypot(a, b)
	for j := range sample {
		xvp := float64(sample[j]) / r
		eps := (xvp - alpha*float64(x0[j])) / sigma
		switch pred {
		case "v_prediction":
			out[j] = float32(alpha*eps - sigma*float64(x0[j]))
		case "sample":
			out[j] = x0[j]
		default:
			out[j] = float32(eps)
		}
	}
}

// countingNoise is a deterministic fake generator that records its calls.
type countingNoise struct {
	seed  uint64
	calls []int // length asked for, per call
}

func (c *countingNoise) Randn(dst []float32) {
	c.calls = append(c.calls, len(dst))
	for i := range dst {
		c.seed = c.seed*6364136223846793005 + 1442695040888963407
		// A value in about [-1.7, 1.7]; normality does not matter here.
		dst[i] = float32(int64(c.seed>>11)%2000-1000) / 577
	}
}

// fixedNoise hands out the same vector on every call.
type fixedNoise struct{ v []float32 }

func (f fixedNoise) Randn(dst []float32) { copy(dst, f.v) }

func maxAbsDiff(a, b []float32) float64 {
	d := 0.0
	for i := range a {
		d = math.Max(d, math.Abs(float64(a[i])-float64(b[i])))
	}
	return d
}

func allFinite(v []float32) bool {
	for _, x := range v {
		if math.IsNaN(float64(x)) || math.IsInf(float64(x), 0) {
			return false
		}
	}
	return true
}

// run drives s from step start to the end with model outputs from model.
func run(t testing.TB, s Scheduler, start int, sample []float32, noise Noise, model func(i int, sample, out []float32)) {
	t.Helper()
	out := make([]float32, len(sample))
	in := make([]float32, len(sample))
	for i := start; i < len(s.Timesteps()); i++ {
		s.ScaleModelInput(in, sample, i)
		model(i, sample, out)
		if err := s.Step(i, out, sample, noise); err != nil {
			t.Fatalf("%s Step(%d): %v", s.Name(), i, err)
		}
	}
}
