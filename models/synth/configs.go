package synth

import (
	"encoding/json"
	"os"
	"path/filepath"

	"github.com/sdgate/sdgate/sd/clip"
)

const diffusersVersion = "0.30.0"

// Manifest is sdgate.json: what the pipeline should default to for this
// synthetic model (a real export has no such file; its user knows).
type Manifest struct {
	Preset          string  `json:"preset"`
	NativeWidth     int     `json:"native_width"`
	NativeHeight    int     `json:"native_height"`
	DefaultSteps    int     `json:"default_steps"`
	DefaultGuidance float64 `json:"default_guidance"`
	Seed            uint64  `json:"seed"`
	FP16            bool    `json:"fp16"`
	// Source is where imported weights came from (absent for random ones).
	Source string `json:"source,omitempty"`
}

// ManifestFile is the manifest's name in the model folder.
const ManifestFile = "sdgate.json"

// writeConfigs writes everything but the networks: model_index.json,
// scheduler/, tokenizer/ and sdgate.json.
func writeConfigs(dir string, opts Options, p preset, merges []clip.Merge) error {
	component := func(lib, class string) []string { return []string{lib, class} }
	absent := []any{nil, nil} // how diffusers records a component it does not have
	index := map[string]any{
		"_class_name":             "OnnxStableDiffusionPipeline",
		"_diffusers_version":      diffusersVersion,
		"feature_extractor":       absent,
		"requires_safety_checker": false,
		"safety_checker":          absent,
		"scheduler":               component("diffusers", "PNDMScheduler"),
		"text_encoder":            component("transformers", "CLIPTextModel"),
		"tokenizer":               component("transformers", "CLIPTokenizer"),
		"unet":                    component("diffusers", "OnnxRuntimeModel"),
		"vae_decoder":             component("diffusers", "OnnxRuntimeModel"),
	}
	if opts.Inpaint {
		index["_class_name"] = "OnnxStableDiffusionInpaintPipeline"
	}
	if opts.LCM {
		index["_class_name"] = "ORTLatentConsistencyModelPipeline"
		index["scheduler"] = component("diffusers", "LCMScheduler")
	}
	if !opts.NoVAEEncoder {
		index["vae_encoder"] = component("diffusers", "OnnxRuntimeModel")
	}
	if p.text2 != nil {
		xlIndex(index, opts)
	}
	// SD 1.5's own scheduler configuration.
	scheduler := map[string]any{
		"_class_name":         "PNDMScheduler",
		"_diffusers_version":  diffusersVersion,
		"beta_start":          0.00085,
		"beta_end":            0.012,
		"beta_schedule":       "scaled_linear",
		"num_train_timesteps": 1000,
		"set_alpha_to_one":    false,
		"skip_prk_steps":      true,
		"steps_offset":        1,
		"clip_sample":         false,
		"prediction_type":     prediction(opts, p),
		"timestep_spacing":    "leading",
		"trained_betas":       nil,
	}
	if opts.LCM { // LCM-distilled SD 1.5's scheduler configuration
		scheduler["_class_name"] = "LCMScheduler"
		scheduler["original_inference_steps"] = 50
		scheduler["set_alpha_to_one"] = true
		delete(scheduler, "skip_prk_steps")
	}
	if p.text2 != nil {
		scheduler = xlScheduler(prediction(opts, p))
	}
	if opts.Turbo {
		turboScheduler(scheduler)
	}
	manifest := Manifest{
		Preset: opts.Preset, NativeWidth: p.width, NativeHeight: p.height,
		DefaultSteps: p.steps, DefaultGuidance: p.guidance, Seed: opts.Seed, FP16: opts.FP16, Source: opts.Source,
	}
	if opts.LCM { // diffusers' LCM pipeline defaults
		manifest.DefaultSteps, manifest.DefaultGuidance = 4, 8.5
	}
	for _, f := range []struct {
		path  string
		value any
	}{
		{"model_index.json", index},
		{filepath.Join("scheduler", "scheduler_config.json"), scheduler},
		{ManifestFile, manifest},
	} {
		if err := writeJSON(filepath.Join(dir, f.path), f.value); err != nil {
			return err
		}
	}
	pad := padToken
	if p.pad != "" {
		pad = p.pad
	}
	if err := clip.WriteFolder(filepath.Join(dir, "tokenizer"), merges, pad); err != nil {
		return err
	}
	if p.text2 != nil { // OpenCLIP bigG pads with "!"
		return clip.WriteFolder(filepath.Join(dir, "tokenizer_2"), merges, sd2Pad)
	}
	return nil
}

// prediction is what the UNet predicts: Options.Prediction, else the preset's.
func prediction(opts Options, p preset) string {
	switch {
	case opts.Prediction != "":
		return opts.Prediction
	case p.prediction != "":
		return p.prediction
	}
	return "epsilon"
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
