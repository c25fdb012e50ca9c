package main

import (
	"log/slog"

	"github.com/sdgate/sdgate/convert/onnxlora"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd"
)

// loraVariantOpener opens model folders with LoRAs merged as they load:
// sd creates the sessions, convert/onnxlora rewrites the text encoder's
// and the UNet's weights first. Nothing is written to the folder.
func loraVariantOpener(rt *sd.Runtime, strict bool, logger *slog.Logger) models.VariantOpener {
	return func(dir string, applied []models.AppliedLoRA) (models.Pipeline, error) {
		files := make([]onnxlora.File, len(applied))
		for i, a := range applied {
			files[i] = onnxlora.File{Name: a.Name, Path: a.Path, Scale: a.Scale}
		}
		return rt.OpenPipelineWith(dir, sd.LoadOptions{Rewrite: onnxlora.Rewriter(files, strict, logger)})
	}
}
