//go:build cgo

package models

import (
	"testing"

	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/sd"
)

// testOpener opens folders with the real ONNX pipeline on a CPU runtime
// closed when the test ends; the only test file that names sd, so the
// package vets without cgo.
func testOpener(t testing.TB) Opener {
	t.Helper()
	lib := ortest.Library(t)
	rt, err := sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return OpenWith(rt.OpenPipeline)
}
