package onnxlora

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sdgate/sdgate/convert/lora"
)

// File is a LoRA file and the scale it is merged at.
type File struct {
	Name  string // for messages
	Path  string
	Scale float64
}

// Rewriter returns a graph rewrite for sd.LoadOptions.Rewrite: it merges
// files into the text encoder's and the UNet's weights and leaves other
// networks alone. The files are read on every load (a variant unloaded and
// loaded again reads them anew) and let go once merged.
func Rewriter(files []File, strict bool, logger *slog.Logger) func(network, path string, model []byte) ([]byte, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return func(network, path string, model []byte) ([]byte, error) {
		if network != "unet" && network != "text_encoder" {
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
		logger.Info("LoRAs merged", "network", network, "model", filepath.Dir(filepath.Dir(path)), "modules", rep.Merged, "unmatched", len(rep.Unmatched))
		for _, key := range rep.Unmatched {
			logger.Warn("LoRA module matches no weight", "network", network, "module", key)
		}
		return out, nil
	}
}
