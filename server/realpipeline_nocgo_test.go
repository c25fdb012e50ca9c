//go:build !cgo

package server

import (
	"testing"

	"github.com/sdgate/sdgate/models"
)

func realOpener(t testing.TB) models.Opener {
	t.Skip("the real pipeline needs ONNX Runtime through cgo: build with CGO_ENABLED=1 (and `make deps`)")
	return nil
}

func realVariantOpener(t testing.TB) models.VariantOpener {
	t.Skip("the real pipeline needs ONNX Runtime through cgo: build with CGO_ENABLED=1 (and `make deps`)")
	return nil
}

func closeRealRuntime() {}
