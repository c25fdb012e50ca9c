package main

import (
	"errors"
	"fmt"
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
		merge := onnxlora.Rewriter(files, strict, logger)
		rewrite := func(network, path string, model []byte) ([]byte, error) {
			if network == "text_encoder" { // the first network rewritten: once per load
				if err := checkLoRADigests(applied); err != nil {
					return nil, err
				}
			}
			return merge(network, path, model)
		}
		return rt.OpenPipelineWith(dir, sd.LoadOptions{Rewrite: rewrite})
	}
}

// errLoRAChanged: a LoRA file differs from what the registry scanned.
var errLoRAChanged = errors.New("changed since the models folder was scanned: rescan (SIGHUP or POST /v1/admin/models/rescan) to serve it")

// checkLoRADigests refuses LoRA files whose content is not what their
// digest (and so the cache key) says.
func checkLoRADigests(applied []models.AppliedLoRA) error {
	for _, a := range applied {
		d, err := models.LoRADigest(a.Path)
		if err != nil {
			return fmt.Errorf("LoRA %s: %w", a.Name, err)
		}
		if d != a.Digest {
			return fmt.Errorf("LoRA %s (%s): %w", a.Name, a.Path, errLoRAChanged)
		}
	}
	return nil
}
