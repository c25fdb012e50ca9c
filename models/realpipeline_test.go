//go:build cgo

package models

import (
	"testing"

	"github.com/sdgate/sdgate/convert/onnxlora"
	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/sd"
)

// testOpener opens folders with the real ONNX pipeline on a CPU runtime
// closed when the test ends; the only test file that names sd, so the
// package vets without cgo.
func testOpener(t testing.TB) Opener {
	open, _ := testOpeners(t)
	return open
}

// testOpeners are testOpener and a VariantOpener on the same runtime that
// merges LoRAs as cmd/sdgate does (convert/onnxlora, strict).
func testOpeners(t testing.TB) (Opener, VariantOpener) {
	t.Helper()
	lib := ortest.Library(t)
	rt, err := sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	variant := func(dir string, loras []AppliedLoRA) (Pipeline, error) {
		files := make([]onnxlora.File, len(loras))
		for i, l := range loras {
			files[i] = onnxlora.File{Name: l.Name, Path: l.Path, Scale: l.Scale}
		}
		return rt.OpenPipelineWith(dir, sd.LoadOptions{Rewrite: onnxlora.Rewriter(files, true, nil)})
	}
	return OpenWith(rt.OpenPipeline), variant
}
