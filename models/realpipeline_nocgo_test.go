//go:build !cgo

package models

import "testing"

func testOpener(t testing.TB) Opener {
	t.Skip("the real pipeline needs ONNX Runtime through cgo: build with CGO_ENABLED=1 (and `make deps`)")
	return nil
}
