package main

import (
	"fmt"
	"log/slog"
	"path/filepath"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/onnxlora"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd"
)

// loraVariantOpener opens model folders with LoRAs merged as they load:
// sd creates the sessions, convert/onnxlora rewrites the text encoder's
// and the UNet's weights first. Nothing is written to the folder.
func loraVariantOpener(rt *sd.Runtime, strict bool, logger *slog.Logger) models.VariantOpener {
	return func(dir string, applied []models.AppliedLoRA) (models.Pipeline, error) {
		return rt.OpenPipelineWith(dir, sd.LoadOptions{Rewrite: loraRewrite(applied, strict, logger)})
	}
}

// loraRewrite merges applied into one network's graph. The LoRA files are
// read on every load (a variant unloaded and loaded again reads them
// anew) and let go once merged.
func loraRewrite(applied []models.AppliedLoRA, strict bool, logger *slog.Logger) func(network, path string, model []byte) ([]byte, error) {
	return func(network, path string, model []byte) ([]byte, error) {
		if network != "unet" && network != "text_encoder" {
			return model, nil
		}
		scaled := make([]lora.Scaled, len(applied))
		for i, a := range applied {
			l, err := lora.Open(a.Path)
			if err != nil {
				return nil, fmt.Errorf("LoRA %s: %w", a.Name, err)
			}
			scaled[i] = lora.Scaled{LoRA: l, Scale: float32(a.Scale)}
		}
		out, rep, err := onnxlora.Merge(model, filepath.Dir(path), network, strict, scaled...)
		if err != nil {
			return nil, fmt.Errorf("merge LoRAs: %w", err)
		}
		logger.Info("LoRAs merged", "network", network, "dir", filepath.Dir(filepath.Dir(path)), "modules", rep.Merged, "unmatched", len(rep.Unmatched))
		for _, key := range rep.Unmatched {
			logger.Warn("LoRA module matches no weight", "network", network, "module", key)
		}
		return out, nil
	}
}
