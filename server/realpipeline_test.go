//go:build cgo

package server

import (
	"sync"
	"testing"

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

func closeRealRuntime() {
	if rt != nil {
		rt.Close()
	}
}
