package scheduler

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
)

// Sentinel errors callers can tell apart with errors.Is.
var (
	// ErrUnknownScheduler: the name (or the config's _class_name) is not one we implement.
	ErrUnknownScheduler = errors.New("unknown scheduler")
	// ErrBadSteps: the number of inference steps is out of range for the scheduler.
	ErrBadSteps = errors.New("bad number of steps")
	// ErrBadConfig: scheduler_config.json could not be read or holds an invalid value.
	ErrBadConfig = errors.New("bad scheduler config")
	// ErrUnsupported: the config asks for a feature these schedulers do not implement.
	ErrUnsupported = errors.New("unsupported scheduler option")
	// ErrBadStep: Step was called with an index out of range or out of order.
	ErrBadStep = errors.New("bad step index")
	// ErrLengthMismatch: model output and sample (or an earlier step's latents) differ in length.
	ErrLengthMismatch = errors.New("latent length mismatch")
	// ErrNoNoise: a stochastic step needs a Noise source and got nil.
	ErrNoNoise = errors.New("stochastic step needs noise")
	// ErrBadStrength: img2img strength outside [0, 1] or too small to leave a step.
	ErrBadStrength = errors.New("bad img2img strength")
)

// Config is the part of a diffusers scheduler_config.json these schedulers
// use. Keys we do not know are ignored. Optional booleans are pointers: nil
// means "the chosen scheduler's own diffusers default", because diffusers'
// defaults differ per class (DDIM clips samples and sets alpha to one by
// default, PNDM does neither) and a config written for one class is routinely
// used with another.
type Config struct {
	ClassName         string    `json:"_class_name"`
	NumTrainTimesteps int       `json:"num_train_timesteps"`
	BetaStart         float64   `json:"beta_start"`
	BetaEnd           float64   `json:"beta_end"`
	BetaSchedule      string    `json:"beta_schedule"`   // "scaled_linear" or "linear"
	TrainedBetas      []float64 `json:"trained_betas"`   // overrides the beta schedule when set
	PredictionType    string    `json:"prediction_type"` // "epsilon", "v_prediction" or "sample"
	StepsOffset       int       `json:"steps_offset"`
	// TimestepSpacing is "leading", "linspace" or "trailing"; "" means the
	// scheduler's default (leading for DDIM, PNDM and LCM; linspace for the
	// Euler and DPM-Solver families).
	TimestepSpacing string  `json:"timestep_spacing"`
	SetAlphaToOne   *bool   `json:"set_alpha_to_one"`
	ClipSample      *bool   `json:"clip_sample"`
	ClipSampleRange float64 `json:"clip_sample_range"`
	SkipPRKSteps    *bool   `json:"skip_prk_steps"`
	UseKarrasSigmas bool    `json:"use_karras_sigmas"`

	// LCM.
	OriginalInferenceSteps int     `json:"original_inference_steps"`
	TimestepScaling        float64 `json:"timestep_scaling"`

	// DPM-Solver settings; only the values DPM++ 2M uses are accepted when
	// the scheduler is picked by _class_name.
	SolverOrder   int    `json:"solver_order"`
	AlgorithmType string `json:"algorithm_type"`
	SolverType    string `json:"solver_type"`

	// Switches that change the maths in ways not implemented here; a config
	// that turns one on is rejected rather than silently run differently.
	Thresholding         bool   `json:"thresholding"`
	RescaleBetasZeroSNR  bool   `json:"rescale_betas_zero_snr"`
	UseExponentialSigmas bool   `json:"use_exponential_sigmas"`
	UseBetaSigmas        bool   `json:"use_beta_sigmas"`
	FinalSigmasType      string `json:"final_sigmas_type"`

	// Eta is DDIM's noise weight (0 = deterministic DDIM, 1 = DDPM-like).
	// In diffusers it is a pipeline argument, not a config key, so it is
	// never read from JSON; callers set it.
	Eta float64 `json:"-"`
}

// DefaultConfig is the Stable Diffusion 1.x/2.x noise schedule (1000 steps,
// scaled-linear betas from 0.00085 to 0.012, epsilon prediction) with every
// per-class option left to the chosen scheduler's default.
func DefaultConfig() Config {
	return Config{
		NumTrainTimesteps:      1000,
		BetaStart:              0.00085,
		BetaEnd:                0.012,
		BetaSchedule:           "scaled_linear",
		PredictionType:         "epsilon",
		ClipSampleRange:        1,
		OriginalInferenceSteps: 50,
		TimestepScaling:        10,
		SolverOrder:            2,
		AlgorithmType:          "dpmsolver++",
		SolverType:             "midpoint",
		FinalSigmasType:        "zero",
	}
}

// ParseConfig reads a diffusers scheduler_config.json. Keys absent from the
// file keep DefaultConfig's values; unknown keys are ignored. The result is
// validated, so a bad beta_schedule or prediction_type fails here.
func ParseConfig(data []byte) (Config, error) {
	cfg := DefaultConfig()
	if err := json.Unmarshal(data, &cfg); err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	if err := cfg.Validate(); err != nil {
		return Config{}, err
	}
	return cfg, nil
}

// LoadConfig reads and parses the scheduler_config.json at path.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("%w: %w", ErrBadConfig, err)
	}
	cfg, err := ParseConfig(data)
	if err != nil {
		return Config{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// Validate reports the first value that no scheduler here can run with.
// Errors wrap ErrBadConfig (a malformed value) or ErrUnsupported (a valid
// diffusers option that is not implemented).
func (c Config) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrBadConfig}, args...)...)
	}
	unsupported := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrUnsupported}, args...)...)
	}
	if c.NumTrainTimesteps < 2 || c.NumTrainTimesteps > 100000 {
		return bad("num_train_timesteps %d out of range 2..100000", c.NumTrainTimesteps)
	}
	if c.TrainedBetas != nil {
		if len(c.TrainedBetas) != c.NumTrainTimesteps {
			return bad("trained_betas has %d values, num_train_timesteps is %d", len(c.TrainedBetas), c.NumTrainTimesteps)
		}
		for i, b := range c.TrainedBetas {
			if !(b > 0 && b < 1) {
				return bad("trained_betas[%d] = %v, want 0 < beta < 1", i, b)
			}
		}
	} else {
		switch c.BetaSchedule {
		case "scaled_linear", "linear":
		case "squaredcos_cap_v2":
			return unsupported("beta_schedule %q (use scaled_linear or linear)", c.BetaSchedule)
		default:
			return bad("beta_schedule %q (want scaled_linear or linear)", c.BetaSchedule)
		}
		if !(c.BetaStart > 0 && c.BetaEnd < 1 && c.BetaStart <= c.BetaEnd) {
			return bad("beta_start %v and beta_end %v: want 0 < start <= end < 1", c.BetaStart, c.BetaEnd)
		}
	}
	switch c.PredictionType {
	case "epsilon", "v_prediction", "sample":
	default:
		return bad("prediction_type %q (want epsilon, v_prediction or sample)", c.PredictionType)
	}
	switch c.TimestepSpacing {
	case "", "leading", "linspace", "trailing":
	default:
		return bad("timestep_spacing %q (want leading, linspace or trailing)", c.TimestepSpacing)
	}
	if c.StepsOffset < 0 || c.StepsOffset >= c.NumTrainTimesteps {
		return bad("steps_offset %d out of range", c.StepsOffset)
	}
	if !(c.ClipSampleRange > 0) || math.IsInf(c.ClipSampleRange, 0) {
		return bad("clip_sample_range %v, want > 0", c.ClipSampleRange)
	}
	if c.OriginalInferenceSteps < 1 {
		return bad("original_inference_steps %d, want >= 1", c.OriginalInferenceSteps)
	}
	if !(c.TimestepScaling > 0) || math.IsInf(c.TimestepScaling, 0) {
		return bad("timestep_scaling %v, want > 0", c.TimestepScaling)
	}
	switch {
	case c.Thresholding:
		return unsupported("thresholding")
	case c.RescaleBetasZeroSNR:
		return unsupported("rescale_betas_zero_snr")
	case c.UseExponentialSigmas:
		return unsupported("use_exponential_sigmas")
	case c.UseBetaSigmas:
		return unsupported("use_beta_sigmas")
	case c.FinalSigmasType != "zero":
		return unsupported("final_sigmas_type %q (only zero)", c.FinalSigmasType)
	}
	return nil
}

// spacing resolves TimestepSpacing against a scheduler's default.
func (c Config) spacing(def string) string {
	if c.TimestepSpacing == "" {
		return def
	}
	return c.TimestepSpacing
}

// boolOr resolves an optional boolean against a scheduler's default.
func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}
