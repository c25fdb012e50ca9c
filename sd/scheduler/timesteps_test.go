package scheduler

import (
	"errors"
	"math"
	"slices"
	"testing"
)

// withSpacing returns the SD 1.5 config with timestep_spacing set.
func withSpacing(t *testing.T, spacing string) Config {
	cfg := sd15(t)
	cfg.TimestepSpacing = spacing
	return cfg
}

// wantSpaced derives the descending integer timesteps for a spacing from
// the definitions (T = 1000, steps_offset 1 as in SD 1.5):
//
//	leading:  (n-1-i)·⌊T/n⌋ + 1
//	linspace: round_half_even((n-1-i)·(T-1)/(n-1))
//	trailing: round_half_even(T - i·T/n) - 1
func wantSpaced(spacing string, n int) []float64 {
	out := make([]float64, n)
	for i := range n {
		switch spacing {
		case "leading":
			out[i] = float64((n-1-i)*(1000/n) + 1)
		case "linspace":
			if n > 1 {
				out[i] = math.RoundToEven(float64(n-1-i) * (999.0 / float64(n-1)))
			}
		case "trailing":
			out[i] = math.RoundToEven(1000-float64(i)*1000/float64(n)) - 1
		}
	}
	return out
}

// 7 and 16 steps hit exact .5 ties (linspace 166.5, trailing 812.5) that
// numpy rounds to even.
var stepCounts = []int{1, 2, 4, 7, 16, 20, 25, 50}

func TestDDIMTimesteps(t *testing.T) {
	for _, spacing := range []string{"leading", "linspace", "trailing"} {
		for _, n := range stepCounts {
			s := mustNew(t, DDIM, withSpacing(t, spacing), n)
			got, want := s.Timesteps(), wantSpaced(spacing, n)
			if !slices.Equal(got, want) {
				t.Errorf("ddim %s %d steps: got %v, want %v", spacing, n, got, want)
			}
		}
	}
	spot := []struct {
		name    string
		spacing string
		n       int
		want    []float64
	}{
		{"leading 50 from diffusers", "", 50, []float64{981, 961, 941}},
		{"linspace 4", "linspace", 4, []float64{999, 666, 333, 0}},
		{"trailing 4", "trailing", 4, []float64{999, 749, 499, 249}},
		{"linspace 25", "linspace", 25, []float64{999, 957, 916, 874}},
		{"linspace 7 rounds half to even", "linspace", 7, []float64{999, 832, 666, 500, 333, 166, 0}},
		{"trailing 16 rounds half to even", "trailing", 16, []float64{999, 937, 874, 811, 749}},
	}
	for _, c := range spot {
		t.Run(c.name, func(t *testing.T) {
			got := mustNew(t, DDIM, withSpacing(t, c.spacing), c.n).Timesteps()
			if !slices.Equal(got[:len(c.want)], c.want) {
				t.Errorf("got %v, want prefix %v", got, c.want)
			}
		})
	}
	if got := mustNew(t, DDIM, sd15(t), 50).Timesteps(); got[49] != 1 || len(got) != 50 {
		t.Errorf("ddim 50 leading ends %v (len %d), want 1 (len 50)", got[49], len(got))
	}
}

func TestEulerSigmas(t *testing.T) {
	for _, name := range []string{Euler, EulerA} {
		for _, spacing := range []string{"linspace", "leading", "trailing"} {
			for _, n := range stepCounts {
				cfg := withSpacing(t, spacing)
				if spacing == "linspace" {
					cfg.TimestepSpacing = "" // Euler's own default
				}
				s := mustNew(t, name, cfg, n)
				ts := s.Timesteps()
				want := wantSpaced(spacing, n)
				if spacing == "linspace" && n > 1 { // Euler keeps them fractional
					for i := range want {
						want[i] = float64(n-1-i) * 999 / float64(n-1)
					}
				}
				if len(ts) != n {
					t.Fatalf("%s %s %d: %d timesteps", name, spacing, n, len(ts))
				}
				for i := range ts {
					if math.Abs(ts[i]-want[i]) > 1e-4 {
						t.Errorf("%s %s %d: t[%d] = %v, want %v", name, spacing, n, i, ts[i], want[i])
					}
					// AddNoise(x0, ε) = x0 + σ_i·ε reveals σ_i.
					a, b, _, _ := level(s, i)
					if a != 1 || !relClose(b, refSigma(want[i]), 2e-5) {
						t.Errorf("%s %s %d: level %d = (%v, %v), want (1, %v)", name, spacing, n, i, a, b, refSigma(want[i]))
					}
				}
				max := refSigma(want[0])
				wantInit := max
				if spacing == "leading" {
					wantInit = math.Sqrt(max*max + 1)
				}
				if !relClose(s.InitNoiseSigma(), wantInit, 2e-5) {
					t.Errorf("%s %s %d: init sigma %v, want %v", name, spacing, n, s.InitNoiseSigma(), wantInit)
				}
			}
		}
	}
	// Well-known SD numbers: σ_max = 14.6146 at t = 999, σ_min = 0.0292 at t = 0.
	s := mustNew(t, Euler, sd15(t), 20)
	if got := s.InitNoiseSigma(); math.Abs(got-14.6146) > 1e-4 {
		t.Errorf("euler 20 init sigma %v, want 14.6146", got)
	}
	if _, b, _, _ := level(s, 19); math.Abs(b-0.029168) > 1e-5 {
		t.Errorf("euler 20 last sigma %v, want 0.029168", b)
	}
	if ts := s.Timesteps(); math.Abs(ts[1]-946.4211) > 1e-3 {
		t.Errorf("euler 20 t[1] = %v, want 946.4211", ts[1])
	}
}

func TestEulerScaleModelInput(t *testing.T) {
	s := mustNew(t, Euler, sd15(t), 20)
	x := []float32{1, -2, 3}
	for _, i := range []int{0, 7, 19} {
		sigma := refSigma(s.Timesteps()[i])
		dst := slices.Clone(x)
		s.ScaleModelInput(dst, dst, i) // aliasing allowed
		for j := range x {
			want := float64(x[j]) / math.Sqrt(sigma*sigma+1)
			if !relClose(float64(dst[j]), want, 2e-5) {
				t.Errorf("step %d: scaled %v, want %v", i, dst[j], want)
			}
		}
	}
	for _, name := range []string{DDIM, DPMPP2M, LCM, PNDM} {
		s := mustNew(t, name, sd15(t), 4)
		dst := make([]float32, 3)
		s.ScaleModelInput(dst, x, 1)
		if !slices.Equal(dst, x) || s.InitNoiseSigma() != 1 {
			t.Errorf("%s: scaled %v (init sigma %v), want identity and 1", name, dst, s.InitNoiseSigma())
		}
	}
}

func TestDPMSolverTimesteps(t *testing.T) {
	for _, n := range stepCounts {
		// linspace over n+1 points, highest n kept: round((n-i)·999/n).
		s := mustNew(t, DPMPP2M, sd15(t), n)
		want := make([]float64, n)
		for i := range want {
			want[i] = math.RoundToEven(float64(n-i) * 999 / float64(n))
		}
		if got := s.Timesteps(); !slices.Equal(got, want) {
			t.Errorf("dpmpp_2m %d: got %v, want %v", n, got, want)
		}
		for i, ts := range want {
			// DPM-Solver is VP: AddNoise = α·x0 + σ·ε with σ/α the VE sigma.
			_, _, alpha, sigma := level(s, i)
			if !relClose(sigma/alpha, refSigma(ts), 2e-5) {
				t.Errorf("dpmpp_2m %d: sigma %d = %v, want %v", n, i, sigma/alpha, refSigma(ts))
			}
		}
	}
	if got := mustNew(t, DPMPP2M, sd15(t), 20).Timesteps(); !slices.Equal(got[:4], []float64{999, 949, 899, 849}) || got[19] != 50 {
		t.Errorf("dpmpp_2m 20 = %v, want 999, 949, 899, 849, ..., 50", got)
	}
	// Leading and trailing for DPM-Solver: ⌊T/(n+1)⌋ spacing plus offset, and
	// the usual trailing.
	cfg := withSpacing(t, "leading")
	if got := mustNew(t, DPMPP2M, cfg, 4).Timesteps(); !slices.Equal(got, []float64{801, 601, 401, 201}) {
		t.Errorf("dpmpp_2m leading 4 = %v", got)
	}
	cfg = withSpacing(t, "trailing")
	if got := mustNew(t, DPMPP2M, cfg, 4).Timesteps(); !slices.Equal(got, []float64{999, 749, 499, 249}) {
		t.Errorf("dpmpp_2m trailing 4 = %v", got)
	}
}

func TestKarrasSigmas(t *testing.T) {
	smax, smin := refSigma(999), refSigma(0)
	for _, n := range []int{1, 4, 20, 25} {
		s := mustNew(t, DPMPP2MKarras, sd15(t), n)
		if len(s.Timesteps()) != n {
			t.Fatalf("karras %d: %d timesteps", n, len(s.Timesteps()))
		}
		for i := range n {
			// σ_i = (σmax^(1/7) + i/(n-1)·(σmin^(1/7) - σmax^(1/7)))^7
			r := 0.0
			if n > 1 {
				r = float64(i) / float64(n-1)
			}
			want := math.Pow(math.Pow(smax, 1/7.0)+r*(math.Pow(smin, 1/7.0)-math.Pow(smax, 1/7.0)), 7)
			_, _, alpha, sigma := level(s, i)
			if !relClose(sigma/alpha, want, 2e-5) {
				t.Errorf("karras %d: sigma %d = %v, want %v", n, i, sigma/alpha, want)
			}
			// The timestep is where the log-linear sigma table reaches σ_i.
			ts := s.Timesteps()[i]
			if lo, hi := refSigma(ts-0.5), refSigma(ts+0.5); ts > 0 && ts < 999 && !(lo <= want*1.0001 && want <= hi*1.0001) {
				t.Errorf("karras %d: t[%d] = %v, sigma %v not within [%v, %v]", n, i, ts, want, lo, hi)
			}
		}
	}
	// diffusers' DPM++ 2M Karras for SD at 20 steps.
	s := mustNew(t, DPMPP2MKarras, sd15(t), 20)
	ts := s.Timesteps()
	if !slices.Equal(ts[:4], []float64{999, 962, 921, 876}) || ts[19] != 0 {
		t.Errorf("karras 20 timesteps %v, want 999, 962, 921, 876, ..., 0", ts)
	}
	for i, want := range []float64{14.6146, 11.7254, 9.3402} {
		if _, _, alpha, sigma := level(s, i); math.Abs(sigma/alpha-want) > 1e-4 {
			t.Errorf("karras 20 sigma %d = %v, want %v", i, sigma/alpha, want)
		}
	}
	// Euler honours use_karras_sigmas too (sigmas from its own spaced range).
	cfg := sd15(t)
	cfg.UseKarrasSigmas = true
	e := mustNew(t, Euler, cfg, 20)
	if got := e.Timesteps(); got[0] != 999 || math.Abs(got[1]-961.7328) > 1e-3 {
		t.Errorf("euler karras 20 timesteps %v, want 999, 961.7328, ...", got)
	}
}

func TestLCMTimesteps(t *testing.T) {
	cases := []struct {
		n    int
		want []float64
	}{
		{1, []float64{999}},
		{2, []float64{999, 499}},
		{4, []float64{999, 759, 499, 259}}, // diffusers' LCM 4-step schedule
		{8, nil},
		{50, nil},
	}
	for _, c := range cases {
		got := mustNew(t, LCM, sd15(t), c.n).Timesteps()
		want := c.want
		if want == nil {
			// Index ⌊i·50/n⌋ into 999, 979, ..., 19 (k = 20 apart).
			for i := range c.n {
				want = append(want, float64(999-20*int(math.Floor(float64(i)*50/float64(c.n)))))
			}
		}
		if !slices.Equal(got, want) {
			t.Errorf("lcm %d: got %v, want %v", c.n, got, want)
		}
	}
}

func TestPNDMTimesteps(t *testing.T) {
	for _, n := range stepCounts {
		got := mustNew(t, PNDM, sd15(t), n).Timesteps()
		// PLMS: the leading schedule with its second entry doubled.
		base := wantSpaced("leading", n)
		want := append([]float64{}, base[0])
		if n > 1 {
			want = append(want, base[1])
		}
		want = append(want, base[1:]...)
		if !slices.Equal(got, want) {
			t.Errorf("pndm %d: got %v, want %v", n, got, want)
		}
	}
	got := mustNew(t, PNDM, sd15(t), 50).Timesteps()
	if !slices.Equal(got[:5], []float64{981, 961, 961, 941, 921}) || len(got) != 51 || got[50] != 1 {
		t.Errorf("pndm 50 = %v, want 981, 961, 961, 941, 921, ..., 1 (51)", got)
	}

	cfg := sd15(t)
	cfg.SkipPRKSteps = new(false)
	got = mustNew(t, PNDM, cfg, 50).Timesteps()
	// 12 PRK calls over 921..991, then PLMS from 921 (diffusers repeats it).
	prk := []float64{981, 971, 971, 961, 961, 951, 951, 941, 941, 931, 931, 921, 921, 901, 881}
	if !slices.Equal(got[:len(prk)], prk) || len(got) != 59 || got[58] != 1 {
		t.Errorf("pndm prk 50 = %v, want %v ... 1 (59)", got, prk)
	}
	if got := mustNew(t, PNDM, cfg, 4).Timesteps(); !slices.Equal(got, []float64{751, 626, 626, 501, 501, 376, 376, 251, 251, 126, 126, 1, 1}) {
		t.Errorf("pndm prk 4 = %v", got)
	}
	// diffusers cannot build a PRK schedule below 4 steps.
	if _, err := New(PNDM, cfg, 3); !errors.Is(err, ErrBadSteps) {
		t.Errorf("pndm prk with 3 steps: err %v, want ErrBadSteps", err)
	}
}

// AddNoise for the VP schedulers is sqrt(ᾱ_t)·x0 + sqrt(1-ᾱ_t)·ε.
func TestAddNoiseVP(t *testing.T) {
	ab := refAlphaBar()
	for _, name := range []string{DDIM, LCM, PNDM} {
		s := mustNew(t, name, sd15(t), 4)
		for i, ts := range s.Timesteps() {
			a, b, _, _ := level(s, i)
			want := ab[int(ts)]
			if !relClose(a, math.Sqrt(want), 1e-5) || !relClose(b, math.Sqrt(1-want), 1e-5) {
				t.Errorf("%s step %d (t=%v): (%v, %v), want (%v, %v)", name, i, ts, a, b, math.Sqrt(want), math.Sqrt(1-want))
			}
		}
	}
	// Two well-known values: ᾱ_0 = 1 - 0.00085 and ᾱ_999 ≈ 0.004660.
	if got := alphasCumprod(sd15(t)); math.Abs(got[0]-0.99915) > 1e-7 || math.Abs(got[999]-0.0046600) > 1e-6 {
		t.Errorf("alphas_cumprod[0], [999] = %v, %v", got[0], got[999])
	}
}
