package onnxlora

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/sdgate/sdgate/convert/lora"
)

// File is a LoRA file and the scale it is merged at.
type File struct {
	Name  string // for messages
	Path  string
	Scale float64
}

// Rewriter returns a graph rewrite for sd.LoadOptions.Rewrite: it merges
// files into the text encoders' (SDXL's second one included) and the
// UNet's weights and leaves other networks alone. The files are read on
// every load (a variant unloaded and loaded again reads them anew) and let
// go once merged. sd rewrites the text encoders before the UNet, so at the
// UNet the modules for a text encoder the model does not have (an SDXL
// LoRA's text_encoder_2 on an SD 1.x folder) are known, and are unmatched.
func Rewriter(files []File, strict bool, logger *slog.Logger) func(network, path string, model []byte) ([]byte, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	var mu sync.Mutex
	seen := map[string]bool{} // text encoders rewritten in this load
	return func(network, path string, model []byte) ([]byte, error) {
		switch network {
		case "text_encoder":
			mu.Lock()
			seen = map[string]bool{network: true} // the first network of a load
			mu.Unlock()
		case "text_encoder_2":
			mu.Lock()
			seen[network] = true
			mu.Unlock()
		case "unet":
		default:
			return model, nil
		}
		scaled := make([]lora.Scaled, len(files))
		for i, f := range files {
			l, err := lora.Open(f.Path)
			if err != nil {
				return nil, fmt.Errorf("LoRA %s: %w", f.Name, err)
			}
			scaled[i] = lora.Scaled{LoRA: l, Scale: float32(f.Scale)}
		}
		out, rep, err := Merge(model, filepath.Dir(path), network, strict, scaled...)
		if err != nil {
			return nil, fmt.Errorf("merge LoRAs: %w", err)
		}
		if network == "unet" {
			mu.Lock()
			missing := absentNets(scaled, seen)
			mu.Unlock()
			if len(missing) > 0 && strict {
				return nil, fmt.Errorf("merge LoRAs: %w: %q (a text encoder this model does not have)", lora.ErrUnmatched, missing[0])
			}
			rep.Unmatched = append(rep.Unmatched, missing...)
		}
		logger.Info("LoRAs merged", "network", network, "model", filepath.Dir(filepath.Dir(path)), "modules", rep.Merged, "unmatched", len(rep.Unmatched))
		for _, key := range rep.Unmatched {
			logger.Warn("LoRA module matches no weight", "network", network, "module", key)
		}
		return out, nil
	}
}

// absentNets lists the keys of modules for text encoders not in seen.
func absentNets(loras []lora.Scaled, seen map[string]bool) []string {
	var out []string
	for _, s := range loras {
		for _, m := range s.LoRA.Modules {
			if m.Net != "unet" && !seen[m.Net] {
				out = append(out, m.Key)
			}
		}
	}
	return out
}
