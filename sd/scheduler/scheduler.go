// Package scheduler implements the diffusion schedulers of Hugging Face
// diffusers that Stable Diffusion pipelines use (DDIM, Euler, Euler
// ancestral, DPM++ 2M with and without Karras sigmas, LCM and PNDM/PLMS),
// for a denoise loop that runs the UNet through ONNX Runtime.
//
// One Scheduler serves one request: multistep methods keep history between
// steps. A text-to-image loop reads:
//
//	s, err := scheduler.New(name, cfg, steps)
//	ts := s.Timesteps()
//	rng.Randn(latents); scale latents by s.InitNoiseSigma()
//	for i, t := range ts {
//		s.ScaleModelInput(in, latents, i)
//		eps := unet(in, t) // with classifier-free guidance applied
//		if err := s.Step(i, eps, latents, rng); err != nil { ... }
//	}
//
// Image-to-image starts at k := ImageToImage(s, strength): the initial
// latents are s.AddNoise(latents, x0, noise, k) and the loop runs i = k..len(ts)-1.
//
// The arithmetic follows diffusers (src/diffusers/schedulers/scheduling_*.py):
// the noise tables are built in float32 where diffusers builds them with
// torch, the per-step coefficients in float64, and latents stay float32.
package scheduler

import (
	"fmt"
	"strings"
)

// Noise fills dst with independent standard normal values. In the pipeline
// it is the request's torch-compatible generator, so stochastic schedulers
// draw the same numbers diffusers would with the same seed.
type Noise interface{ Randn(dst []float32) }

// Scheduler turns model outputs into a denoising trajectory.
type Scheduler interface {
	// Timesteps returns a copy of the model timesteps to feed the UNet, one
	// per call of Step: len == steps, except PNDM, whose PLMS schedule
	// repeats one timestep (steps+1 entries when steps > 1; with PRK
	// warm-up, steps+9). Euler's timesteps can be fractional; call it once
	// per request, not per step (it allocates).
	Timesteps() []float64
	// InitNoiseSigma is the factor for the initial N(0,1) latents.
	InitNoiseSigma() float64
	// ScaleModelInput writes the UNet input for step i into dst (which may
	// alias sample; len(dst) >= len(sample)).
	ScaleModelInput(dst, sample []float32, i int)
	// Step advances sample in place from step i using the (already guided)
	// model output. Calls after the first must use consecutive i. noise is
	// used by the stochastic schedulers (Euler a, DDIM with eta > 0, LCM)
	// and may be nil for the others.
	Step(i int, modelOutput, sample []float32, noise Noise) error
	// AddNoise writes x0 noised to the level of step i into dst, for
	// image-to-image and inpainting (dst may alias x0).
	AddNoise(dst, x0, noise []float32, i int)
	// Name is the scheduler's name as New accepts it.
	Name() string
}

// Scheduler names accepted by New, in the order Names lists them.
const (
	DDIM          = "ddim"
	Euler         = "euler"
	EulerA        = "euler_a"
	DPMPP2M       = "dpmpp_2m"
	DPMPP2MKarras = "dpmpp_2m_karras"
	LCM           = "lcm"
	PNDM          = "pndm"
)

// MaxSteps bounds the inference steps any scheduler accepts.
const MaxSteps = 1000

var names = []string{DDIM, Euler, EulerA, DPMPP2M, DPMPP2MKarras, LCM, PNDM}

// New builds the scheduler called name for steps inference steps. An empty
// name means the config's own _class_name (DDIMScheduler,
// EulerDiscreteScheduler, EulerAncestralDiscreteScheduler,
// DPMSolverMultistepScheduler — Karras when use_karras_sigmas —,
// LCMScheduler, PNDMScheduler). steps must lie in 1..MaxSteps and not exceed
// num_train_timesteps (LCM: original_inference_steps).
func New(name string, cfg Config, steps int) (Scheduler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if name == "" {
		var err error
		if name, err = nameForClass(cfg); err != nil {
			return nil, err
		}
	}
	if steps < 1 || steps > MaxSteps || steps > cfg.NumTrainTimesteps {
		return nil, fmt.Errorf("%w: %d, want 1..%d", ErrBadSteps, steps, min(MaxSteps, cfg.NumTrainTimesteps))
	}
	s, err := build(name, cfg, steps)
	if err != nil {
		return nil, err
	}
	// steps_offset can push leading spacing past the last training step
	// (1000 steps with offset 1 asks for t = 1000); diffusers then fails
	// mid-loop, we fail here.
	for _, t := range s.Timesteps() {
		if !(t >= 0 && t <= float64(cfg.NumTrainTimesteps-1)) { // NaN too
			return nil, fmt.Errorf("%w: %d steps with steps_offset %d reach timestep %v, beyond 0..%d",
				ErrBadSteps, steps, cfg.StepsOffset, t, cfg.NumTrainTimesteps-1)
		}
	}
	return s, nil
}

func build(name string, cfg Config, steps int) (Scheduler, error) {
	switch name {
	case DDIM:
		return newDDIM(cfg, steps), nil
	case Euler:
		return newEuler(cfg, steps), nil
	case EulerA:
		return newEulerAncestral(cfg, steps), nil
	case DPMPP2M:
		return newDPMSolver(cfg, steps, false), nil
	case DPMPP2MKarras:
		return newDPMSolver(cfg, steps, true), nil
	case LCM:
		return newLCM(cfg, steps)
	case PNDM:
		return newPNDM(cfg, steps)
	}
	return nil, fmt.Errorf("%w: %q (valid: %s)", ErrUnknownScheduler, name, strings.Join(names, ", "))
}

// nameForClass maps a diffusers _class_name to our scheduler name.
func nameForClass(cfg Config) (string, error) {
	switch cfg.ClassName {
	case "DDIMScheduler":
		return DDIM, nil
	case "EulerDiscreteScheduler":
		return Euler, nil
	case "EulerAncestralDiscreteScheduler":
		return EulerA, nil
	case "DPMSolverMultistepScheduler":
		if cfg.SolverOrder != 2 || cfg.AlgorithmType != "dpmsolver++" || cfg.SolverType != "midpoint" {
			return "", fmt.Errorf("%w: DPMSolverMultistepScheduler with solver_order %d, algorithm_type %q, solver_type %q (only 2, dpmsolver++, midpoint)",
				ErrUnsupported, cfg.SolverOrder, cfg.AlgorithmType, cfg.SolverType)
		}
		if cfg.UseKarrasSigmas {
			return DPMPP2MKarras, nil
		}
		return DPMPP2M, nil
	case "LCMScheduler":
		return LCM, nil
	case "PNDMScheduler":
		return PNDM, nil
	case "":
		return "", fmt.Errorf("%w: no name given and the config has no _class_name (valid: %s)",
			ErrUnknownScheduler, strings.Join(names, ", "))
	}
	return "", fmt.Errorf("%w: _class_name %q (valid names: %s)", ErrUnknownScheduler, cfg.ClassName, strings.Join(names, ", "))
}

// ImageToImage returns the step at which image-to-image denoising starts for
// strength in (0, 1], as diffusers' get_timesteps computes it:
//
//	init = min(int(steps·strength), steps); start = steps - init
//
// where steps is the number of inference steps the scheduler was built
// with. The loop then noises the encoded image with AddNoise(…, start) and
// runs Step for i = start..len(Timesteps())-1. Strength 1 starts from
// (almost) pure noise at step 0; a strength that leaves no step at all
// (steps·strength < 1) is an error wrapping ErrBadStrength, as in diffusers.
//
// Two schedulers keep diffusers' quirks here, for output parity: PNDM
// indexes its timesteps from start although its list holds steps+1 entries,
// and, counting calls rather than steps, treats the first two calls as its
// predictor/corrector pair even when they are two different timesteps (so
// the rest of the run is one level off). LCM's own img2img pipeline in
// diffusers instead shrinks the whole LCM schedule by strength; here LCM is
// cut like the others.
func ImageToImage(s Scheduler, strength float64) (start int, err error) {
	if !(strength >= 0 && strength <= 1) {
		return 0, fmt.Errorf("%w: %v, want 0..1", ErrBadStrength, strength)
	}
	steps := len(s.Timesteps())
	if c, ok := s.(interface{ inferenceSteps() int }); ok {
		steps = c.inferenceSteps()
	}
	init := min(int(float64(steps)*strength), steps)
	if init < 1 {
		return 0, fmt.Errorf("%w: %v leaves no denoising step out of %d", ErrBadStrength, strength, steps)
	}
	return steps - init, nil
}
