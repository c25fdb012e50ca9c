package lora

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strings"
)

// PeftConfigFile is the name peft gives the config it saves beside
// adapter_model.safetensors.
const PeftConfigFile = "adapter_config.json"

// PeftConfig is the part of peft's adapter_config.json that sets a LoRA's
// strength: peft stores no alpha tensor, its scale is lora_alpha / r
// (lora_alpha / sqrt(r) with rsLoRA), per module where the patterns say.
type PeftConfig struct {
	PeftType     string             `json:"peft_type"`
	R            int64              `json:"r"`
	Alpha        float64            `json:"lora_alpha"`
	RSLoRA       bool               `json:"use_rslora"`
	DoRA         bool               `json:"use_dora"`
	RankPattern  map[string]int64   `json:"rank_pattern"`
	AlphaPattern map[string]float64 `json:"alpha_pattern"`
}

// ParsePeftConfig reads an adapter_config.json.
func ParsePeftConfig(data []byte) (PeftConfig, error) {
	var c PeftConfig
	if err := json.Unmarshal(data, &c); err != nil {
		return PeftConfig{}, fmt.Errorf("%w: %s: %v", ErrFormat, PeftConfigFile, err)
	}
	switch {
	case c.PeftType != "" && !strings.EqualFold(c.PeftType, "LORA"):
		return PeftConfig{}, fmt.Errorf("%w: %s: peft_type %q", ErrLyCORIS, PeftConfigFile, c.PeftType)
	case c.DoRA:
		return PeftConfig{}, fmt.Errorf("%w: %s: use_dora (DoRA) is set", ErrLyCORIS, PeftConfigFile)
	case c.R <= 0:
		return PeftConfig{}, fmt.Errorf("%w: %s: r %d must be positive", ErrFormat, PeftConfigFile, c.R)
	case c.Alpha <= 0 || math.IsInf(c.Alpha, 0) || math.IsNaN(c.Alpha):
		return PeftConfig{}, fmt.Errorf("%w: %s: lora_alpha %v must be a positive number", ErrFormat, PeftConfigFile, c.Alpha)
	}
	for k, a := range c.AlphaPattern {
		if a <= 0 || math.IsInf(a, 0) || math.IsNaN(a) {
			return PeftConfig{}, fmt.Errorf("%w: %s: alpha_pattern %q: %v must be a positive number", ErrFormat, PeftConfigFile, k, a)
		}
	}
	return c, nil
}

// ApplyPeftConfig sets the alpha of every module that has no alpha tensor
// from c, checking that each module's rank is the one c declares for it.
// It changes nothing on error.
func (l *LoRA) ApplyPeftConfig(c PeftConfig) error {
	alphas := make([]float32, len(l.Modules))
	for i, m := range l.Modules {
		alphas[i] = m.Alpha
		if m.hasAlpha {
			continue
		}
		r, alpha := c.R, c.Alpha
		if v, ok := matchPattern(c.RankPattern, m.path); ok {
			r = v
		}
		if v, ok := matchPattern(c.AlphaPattern, m.path); ok {
			alpha = v
		}
		if r != m.Rank() {
			return fmt.Errorf("%w: %s says rank %d for %q, its matrices have rank %d", ErrShape, PeftConfigFile, r, m.Key, m.Rank())
		}
		// Merge scales by Alpha / Rank: rsLoRA's alpha / sqrt(r) is that
		// with Alpha = alpha * sqrt(r).
		if c.RSLoRA {
			alpha *= math.Sqrt(float64(r))
		}
		alphas[i] = float32(alpha)
	}
	for i, m := range l.Modules {
		m.Alpha = alphas[i]
	}
	return nil
}

// matchPattern finds the pattern key naming module path: peft's keys are
// module names or their trailing parts ("to_q", "mid_block.attentions.0.proj_in").
// The longest match wins, as the most specific.
func matchPattern[V any](patterns map[string]V, path string) (V, bool) {
	var best V
	bestLen := -1
	for k, v := range patterns {
		if (path == k || strings.HasSuffix(path, "."+k)) && len(k) > bestLen {
			best, bestLen = v, len(k)
		}
	}
	return best, bestLen >= 0
}

// PeftConfigPath is where the config of the peft file at path lives:
// adapter_config.json beside adapter_model.safetensors, as peft saves
// them, or NAME.adapter_config.json beside any other NAME.safetensors.
func PeftConfigPath(path string) string {
	dir, base := filepath.Split(path)
	if base == "adapter_model.safetensors" {
		return filepath.Join(dir, PeftConfigFile)
	}
	return filepath.Join(dir, strings.TrimSuffix(base, ".safetensors")+"."+PeftConfigFile)
}

// readPeftConfig applies the peft file's config (PeftConfigPath), when
// there is one.
func readPeftConfig(l *LoRA, path string) error {
	if l.Format != FormatPeft {
		return nil
	}
	cfgPath := PeftConfigPath(path)
	data, err := os.ReadFile(cfgPath)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	c, err := ParsePeftConfig(data)
	if err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	if err := l.ApplyPeftConfig(c); err != nil {
		return fmt.Errorf("%s: %w", cfgPath, err)
	}
	return nil
}
