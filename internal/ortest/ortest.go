// Package ortest is the one "find ONNX Runtime or skip" helper of the
// tests outside package sd: `make deps` puts the library in lib/.
package ortest

import (
	"os"
	"testing"

	"github.com/sdgate/sdgate/sd"
)

// Library is the ONNX Runtime library the tests use; without one the test
// skips, saying how to get it.
func Library(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	lib, err := sd.FindLibrary("", sd.DefaultLibraryDirs("", wd))
	if err != nil {
		t.Skipf("no ONNX Runtime library (run make deps): %v", err)
	}
	return lib
}
