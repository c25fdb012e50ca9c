package scheduler

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func TestParseConfigSD15(t *testing.T) {
	cfg := sd15(t)
	checks := []struct {
		name string
		ok   bool
	}{
		{"class", cfg.ClassName == "PNDMScheduler"},
		{"train steps", cfg.NumTrainTimesteps == 1000},
		{"betas", cfg.BetaStart == 0.00085 && cfg.BetaEnd == 0.012 && cfg.BetaSchedule == "scaled_linear"},
		{"trained_betas null", cfg.TrainedBetas == nil},
		{"offset", cfg.StepsOffset == 1},
		{"set_alpha_to_one", cfg.SetAlphaToOne != nil && !*cfg.SetAlphaToOne},
		{"skip_prk_steps", cfg.SkipPRKSteps != nil && *cfg.SkipPRKSteps},
		{"clip_sample", cfg.ClipSample != nil && !*cfg.ClipSample},
		{"spacing left to the scheduler", cfg.TimestepSpacing == ""},
		{"defaults", cfg.PredictionType == "epsilon" && cfg.ClipSampleRange == 1 && !cfg.UseKarrasSigmas},
	}
	for _, c := range checks {
		if !c.ok {
			t.Errorf("%s: parsed %+v", c.name, cfg)
		}
	}
}

func TestParseConfig(t *testing.T) {
	cases := []struct {
		name    string
		json    string
		wantErr error
		check   func(Config) bool
	}{
		{"empty object gets SD defaults", `{}`, nil, func(c Config) bool {
			return c.NumTrainTimesteps == 1000 && c.BetaStart == 0.00085 && c.BetaEnd == 0.012 &&
				c.BetaSchedule == "scaled_linear" && c.PredictionType == "epsilon" && c.StepsOffset == 0
		}},
		{"unknown keys ignored", `{"_diffusers_version":"0.30.0","interpolation_type":"linear","foo":[1,2]}`, nil, nil},
		{"linear", `{"beta_schedule":"linear","beta_start":0.0001,"beta_end":0.02}`, nil, func(c Config) bool { return c.BetaSchedule == "linear" }},
		{"v_prediction", `{"prediction_type":"v_prediction","timestep_spacing":"trailing"}`, nil, func(c Config) bool {
			return c.PredictionType == "v_prediction" && c.TimestepSpacing == "trailing"
		}},
		{"karras", `{"_class_name":"DPMSolverMultistepScheduler","use_karras_sigmas":true}`, nil, func(c Config) bool { return c.UseKarrasSigmas }},
		{"lcm keys", `{"original_inference_steps":40,"timestep_scaling":5}`, nil, func(c Config) bool {
			return c.OriginalInferenceSteps == 40 && c.TimestepScaling == 5
		}},
		{"trained betas", `{"num_train_timesteps":3,"trained_betas":[0.1,0.2,0.3]}`, nil, func(c Config) bool { return len(c.TrainedBetas) == 3 }},
		{"bad json", `{"beta_start":`, ErrBadConfig, nil},
		{"wrong type", `{"num_train_timesteps":"many"}`, ErrBadConfig, nil},
		{"unknown schedule", `{"beta_schedule":"quadratic"}`, ErrBadConfig, nil},
		{"cosine schedule", `{"beta_schedule":"squaredcos_cap_v2"}`, ErrUnsupported, nil},
		{"unknown prediction", `{"prediction_type":"flow_prediction"}`, ErrBadConfig, nil},
		{"unknown spacing", `{"timestep_spacing":"random"}`, ErrBadConfig, nil},
		{"trained betas wrong length", `{"trained_betas":[0.1,0.2]}`, ErrBadConfig, nil},
		{"trained betas out of range", `{"num_train_timesteps":2,"trained_betas":[0.1,1.5]}`, ErrBadConfig, nil},
		{"zero train steps", `{"num_train_timesteps":0}`, ErrBadConfig, nil},
		{"one train step", `{"num_train_timesteps":1}`, ErrBadConfig, nil}, // no sigma table to interpolate
		{"betas reversed", `{"beta_start":0.02,"beta_end":0.01}`, ErrBadConfig, nil},
		{"thresholding", `{"thresholding":true}`, ErrUnsupported, nil},
		{"zero snr", `{"rescale_betas_zero_snr":true}`, ErrUnsupported, nil},
		{"final sigma min", `{"final_sigmas_type":"sigma_min"}`, ErrUnsupported, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, err := ParseConfig([]byte(c.json))
			if c.wantErr != nil {
				if !errors.Is(err, c.wantErr) {
					t.Fatalf("err %v, want %v", err, c.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			if c.check != nil && !c.check(cfg) {
				t.Errorf("parsed %+v", cfg)
			}
		})
	}
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "scheduler_config.json")
	if err := os.WriteFile(path, []byte(sd15JSON), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil || cfg.ClassName != "PNDMScheduler" {
		t.Fatalf("LoadConfig = %+v, %v", cfg, err)
	}
	if _, err := LoadConfig(filepath.Join(dir, "missing.json")); !errors.Is(err, ErrBadConfig) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err %v, want ErrBadConfig wrapping not-exist", err)
	}
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"beta_schedule":"nope"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadConfig(bad); !errors.Is(err, ErrBadConfig) || !strings.Contains(err.Error(), "bad.json") {
		t.Errorf("bad file: err %v, want ErrBadConfig naming the file", err)
	}
}

func TestNames(t *testing.T) {
	want := []string{"ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "lcm", "pndm"}
	got := Names()
	if !slices.Equal(got, want) {
		t.Fatalf("Names() = %v, want %v", got, want)
	}
	got[0] = "changed"
	if Names()[0] != "ddim" {
		t.Error("Names returns shared storage")
	}
	for _, name := range want {
		if s := mustNew(t, name, sd15(t), 4); s.Name() != name {
			t.Errorf("New(%q).Name() = %q", name, s.Name())
		}
	}
}

func TestNewByClassName(t *testing.T) {
	cases := []struct {
		class  string
		karras bool
		want   string
	}{
		{"DDIMScheduler", false, DDIM},
		{"EulerDiscreteScheduler", false, Euler},
		{"EulerAncestralDiscreteScheduler", false, EulerA},
		{"DPMSolverMultistepScheduler", false, DPMPP2M},
		{"DPMSolverMultistepScheduler", true, DPMPP2MKarras},
		{"LCMScheduler", false, LCM},
		{"PNDMScheduler", false, PNDM},
	}
	for _, c := range cases {
		cfg := sd15(t)
		cfg.ClassName = c.class
		cfg.UseKarrasSigmas = c.karras
		s, err := New("", cfg, 10)
		if err != nil {
			t.Errorf("%s: %v", c.class, err)
			continue
		}
		if s.Name() != c.want {
			t.Errorf("%s (karras %v): %q, want %q", c.class, c.karras, s.Name(), c.want)
		}
	}
	// An explicit name wins over the class, and dpmpp_2m means no Karras.
	cfg := sd15(t)
	cfg.ClassName = "DPMSolverMultistepScheduler"
	cfg.UseKarrasSigmas = true
	if s := mustNew(t, DPMPP2M, cfg, 10); s.Timesteps()[1] != 899 {
		t.Errorf("dpmpp_2m with use_karras_sigmas in the config: %v, want linspace", s.Timesteps())
	}
}

func TestNewErrors(t *testing.T) {
	cfg := sd15(t)
	cases := []struct {
		name    string
		sched   string
		cfg     func(*Config)
		steps   int
		wantErr error
	}{
		{"unknown name", "heun", nil, 10, ErrUnknownScheduler},
		{"unknown class", "", func(c *Config) { c.ClassName = "HeunDiscreteScheduler" }, 10, ErrUnknownScheduler},
		{"no class", "", func(c *Config) { c.ClassName = "" }, 10, ErrUnknownScheduler},
		{"zero steps", DDIM, nil, 0, ErrBadSteps},
		{"too many steps", DDIM, nil, 1001, ErrBadSteps},
		{"more steps than training", DDIM, func(c *Config) { c.NumTrainTimesteps = 100 }, 101, ErrBadSteps},
		{"lcm beyond original steps", LCM, nil, 51, ErrBadSteps},
		{"offset past the last timestep", DDIM, nil, 1000, ErrBadSteps}, // leading + offset 1 -> t = 1000
		{"dpm order 3 by class", "", func(c *Config) { c.ClassName = "DPMSolverMultistepScheduler"; c.SolverOrder = 3 }, 10, ErrUnsupported},
		{"dpm sde by class", "", func(c *Config) { c.ClassName = "DPMSolverMultistepScheduler"; c.AlgorithmType = "sde-dpmsolver++" }, 10, ErrUnsupported},
		{"pndm sample prediction", PNDM, func(c *Config) { c.PredictionType = "sample" }, 10, ErrUnsupported},
		{"invalid config", DDIM, func(c *Config) { c.BetaSchedule = "cubic" }, 10, ErrBadConfig},
		{"zero config", DDIM, func(c *Config) { *c = Config{} }, 10, ErrBadConfig},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cc := cfg
			if c.cfg != nil {
				c.cfg(&cc)
			}
			_, err := New(c.sched, cc, c.steps)
			if !errors.Is(err, c.wantErr) {
				t.Fatalf("err %v, want %v", err, c.wantErr)
			}
			if errors.Is(err, ErrUnknownScheduler) && !strings.Contains(err.Error(), "dpmpp_2m_karras") {
				t.Errorf("error %q does not list the valid names", err)
			}
		})
	}
	// The bounds themselves are fine.
	cfg.StepsOffset = 0
	for _, steps := range []int{1, 1000} {
		if _, err := New(DDIM, cfg, steps); err != nil {
			t.Errorf("%d steps: %v", steps, err)
		}
	}
	if _, err := New(LCM, cfg, 50); err != nil {
		t.Errorf("lcm 50 steps: %v", err)
	}
}

func TestImageToImage(t *testing.T) {
	cases := []struct {
		name     string
		sched    string
		steps    int
		strength float64
		want     int
		wantErr  bool
	}{
		{"diffusers default 0.8", DDIM, 50, 0.8, 10, false},
		{"full strength", Euler, 20, 1, 0, false},
		{"truncates", DPMPP2M, 4, 0.3, 3, false}, // int(1.2) = 1 step left
		{"pndm counts steps not its 51 timesteps", PNDM, 50, 0.5, 25, false},
		{"nothing left", DDIM, 4, 0.2, 0, true}, // int(0.8) = 0
		{"zero", DDIM, 4, 0, 0, true},
		{"negative", DDIM, 4, -0.1, 0, true},
		{"above one", DDIM, 4, 1.5, 0, true},
		{"NaN", DDIM, 4, nan(), 0, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := mustNew(t, c.sched, sd15(t), c.steps)
			got, err := ImageToImage(s, c.strength)
			if c.wantErr {
				if !errors.Is(err, ErrBadStrength) {
					t.Fatalf("err %v, want ErrBadStrength", err)
				}
				return
			}
			if err != nil || got != c.want {
				t.Fatalf("ImageToImage = %d, %v; want %d", got, err, c.want)
			}
		})
	}
}

func nan() float64 {
	zero := 0.0
	return zero / zero
}

func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(sd15JSON), uint8(50))
	f.Add([]byte(`{"_class_name":"EulerDiscreteScheduler","timestep_spacing":"trailing","prediction_type":"v_prediction"}`), uint8(20))
	f.Add([]byte(`{"num_train_timesteps":3,"trained_betas":[0.1,0.2,0.3]}`), uint8(2))
	f.Add([]byte(`{"beta_start":1e308,"beta_end":-1}`), uint8(1))
	f.Add([]byte(`{"num_train_timesteps":2,"use_karras_sigmas":true,"timestep_spacing":"trailing","steps_offset":1}`), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, steps uint8) {
		cfg, err := ParseConfig(data)
		if err != nil {
			return
		}
		// Whatever parses must build and run every scheduler without
		// panicking; New may still refuse the step count.
		for _, name := range Names() {
			s, err := New(name, cfg, int(steps))
			if err != nil {
				continue
			}
			x := []float32{0.5, -0.5}
			s.AddNoise(x, x, []float32{1, -1}, 0)
			for i := range s.Timesteps() {
				s.ScaleModelInput(make([]float32, 2), x, i)
				if err := s.Step(i, []float32{0.1, 0.2}, x, &countingNoise{}); err != nil {
					t.Fatalf("%s step %d: %v", name, i, err)
				}
			}
		}
	})
}
