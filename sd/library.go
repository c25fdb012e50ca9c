package sd

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ErrLibraryNotFound: no ONNX Runtime shared library at any place we looked.
var ErrLibraryNotFound = errors.New("ONNX Runtime library not found")

// libraryNames are the file names tried in each search directory, the
// versioned name that `make deps` writes first.
var libraryNames = []string{"libonnxruntime.so", "libonnxruntime.so.1.30.0", "libonnxruntime.so.1"}

// FindLibrary returns the ONNX Runtime library to load: explicit when given
// (it must exist), else the first library found in dirs. The error names
// every place tried, so a user can see why none matched.
func FindLibrary(explicit string, dirs []string) (string, error) {
	if explicit != "" {
		if st, err := os.Stat(explicit); err != nil || st.IsDir() {
			return "", fmt.Errorf("%w: %s (from --ort-lib / SDGATE_ORT_LIB) is not a file", ErrLibraryNotFound, explicit)
		}
		return explicit, nil
	}
	var tried []string
	for _, dir := range dirs {
		for _, name := range libraryNames {
			p := filepath.Join(dir, name)
			if st, err := os.Stat(p); err == nil && !st.IsDir() {
				return p, nil
			}
			tried = append(tried, p)
		}
	}
	return "", fmt.Errorf("%w: tried %s; run `make deps` or pass --ort-lib", ErrLibraryNotFound, strings.Join(tried, ", "))
}

// DefaultLibraryDirs lists where sdgate looks for ONNX Runtime without a
// flag: lib/ beside the binary, lib/ one level up (bin/sdgate in the repo),
// PREFIX/lib/sdgate (make install),
// and lib/ in the nearest directory at or above start that holds a go.mod
// (the repo, for `go test` and `go run`).
func DefaultLibraryDirs(executable, start string) []string {
	var dirs []string
	if executable != "" {
		exeDir := filepath.Dir(executable)
		dirs = append(dirs, filepath.Join(exeDir, "lib"), filepath.Join(exeDir, "..", "lib"),
			filepath.Join(exeDir, "..", "lib", "sdgate")) // make install's layout
	}
	for dir := start; dir != ""; {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			dirs = append(dirs, filepath.Join(dir, "lib"))
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			break
		}
		dir = parent
	}
	return dirs
}
