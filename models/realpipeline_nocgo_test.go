//go:build !cgo

package models

import "testing"

const noCgo = "the real pipeline needs ONNX Runtime through cgo: build with CGO_ENABLED=1 (and `make deps`)"

func testOpener(t testing.TB) Opener {
	t.Skip(noCgo)
	return nil
}

func testOpeners(t testing.TB) (Opener, VariantOpener) {
	t.Skip(noCgo)
	return nil, nil
}
