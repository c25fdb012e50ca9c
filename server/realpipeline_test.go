//go:build cgo

package server

import (
	"sync"
	"testing"

	"github.com/sdgate/sdgate/convert/onnxlora"
	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd"
)

// One ONNX Runtime for every test that drives the real pipeline; the only
// test file that names sd, so the rest of the package vets without cgo.
var (
	rtOnce sync.Once
	rt     *sd.Runtime
	rtErr  error
)

// realOpener opens model folders on the shared CPU runtime (skipping when
// ONNX Runtime is not installed).
func realOpener(t testing.TB) models.Opener {
	t.Helper()
	lib := ortest.Library(t)
	rtOnce.Do(func() { rt, rtErr = sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"}) })
	if rtErr != nil {
		t.Fatal(rtErr)
	}
	return models.OpenWith(rt.OpenPipeline)
}

// realVariantOpener opens LoRA variants on the shared runtime, merging as
// serve does (convert/onnxlora behind sd's Rewrite).
func realVariantOpener(t testing.TB) models.VariantOpener {
	t.Helper()
	realOpener(t)
	return func(dir string, applied []models.AppliedLoRA) (models.Pipeline, error) {
		files := make([]onnxlora.File, len(applied))
		for i, a := range applied {
			files[i] = onnxlora.File{Name: a.Name, Path: a.Path, Scale: a.Scale}
		}
		return rt.OpenPipelineWith(dir, sd.LoadOptions{Rewrite: onnxlora.Rewriter(files, true, nil)})
	}
}

func closeRealRuntime() {
	if rt != nil {
		rt.Close()
	}
}
