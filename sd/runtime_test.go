package sd

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testRuntime starts a CPU runtime on the repo's lib/ (make deps).
func testRuntime(t testing.TB) *Runtime {
	t.Helper()
	wd, _ := os.Getwd()
	lib, err := FindLibrary("", DefaultLibraryDirs("", wd))
	if err != nil {
		t.Skipf("no ONNX Runtime library (run make deps): %v", err)
	}
	rt, err := NewRuntime(RuntimeOptions{Library: lib, Device: "cpu"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestFindLibraryNamesPlacesTried(t *testing.T) {
	dir := t.TempDir()
	_, err := FindLibrary("", []string{dir, filepath.Join(dir, "other")})
	if !errors.Is(err, ErrLibraryNotFound) {
		t.Fatalf("err = %v, want ErrLibraryNotFound", err)
	}
	for _, want := range []string{filepath.Join(dir, "libonnxruntime.so"), filepath.Join(dir, "other", "libonnxruntime.so"), "make deps"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if _, err := FindLibrary(filepath.Join(dir, "nope.so"), nil); !errors.Is(err, ErrLibraryNotFound) || !strings.Contains(err.Error(), "nope.so") {
		t.Errorf("explicit missing library: %v", err)
	}
	lib := filepath.Join(dir, "libonnxruntime.so")
	os.WriteFile(lib, []byte("x"), 0o644)
	if got, err := FindLibrary("", []string{dir}); err != nil || got != lib {
		t.Errorf("FindLibrary = %q, %v; want %q", got, err, lib)
	}
}

func TestDefaultLibraryDirs(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "go.mod"), []byte("module x\n"), 0o644)
	deep := filepath.Join(root, "a", "b")
	os.MkdirAll(deep, 0o755)
	dirs := DefaultLibraryDirs("/opt/sdgate/bin/sdgate", deep)
	want := []string{"/opt/sdgate/bin/lib", "/opt/sdgate/lib", "/opt/sdgate/lib/sdgate", filepath.Join(root, "lib")}
	if strings.Join(dirs, "|") != strings.Join(want, "|") {
		t.Errorf("dirs = %v, want %v", dirs, want)
	}
}

func TestLibraryThatIsNotONNXRuntime(t *testing.T) {
	bogus := filepath.Join(t.TempDir(), "libonnxruntime.so")
	os.WriteFile(bogus, []byte("not a library"), 0o644)
	_, err := NewRuntime(RuntimeOptions{Library: bogus, Device: "cpu"})
	if err == nil || !strings.Contains(err.Error(), bogus) {
		t.Fatalf("err = %v, want one naming %s", err, bogus)
	}
}

func TestParseDevice(t *testing.T) {
	cases := []struct {
		in   string
		dev  Device
		auto bool
		bad  bool
	}{
		{"", Device{}, true, false},
		{"auto", Device{}, true, false},
		{"CPU", Device{}, false, false},
		{"cuda", Device{CUDA: true}, false, false},
		{"cuda:3", Device{CUDA: true, Index: 3}, false, false},
		{"cuda:-1", Device{}, false, true},
		{"cuda:x", Device{}, false, true},
		{"tpu", Device{}, false, true},
	}
	for _, c := range cases {
		t.Run(c.in, func(t *testing.T) {
			dev, auto, err := ParseDevice(c.in)
			if (err != nil) != c.bad || dev != c.dev || auto != c.auto {
				t.Errorf("ParseDevice(%q) = %v, %v, %v", c.in, dev, auto, err)
			}
		})
	}
}

// This machine's library has no CUDA provider beside it: cuda must fail
// with a clear error and auto must fall back to the CPU, saying why.
func TestDeviceSelectionWithoutCUDA(t *testing.T) {
	rt := testRuntime(t) // keeps the environment loaded across the cases
	if dev, _ := rt.Device(); dev.CUDA {
		t.Fatal("cpu runtime reports cuda")
	}
	_, err := NewRuntime(RuntimeOptions{Library: rt.Library(), Device: "cuda:0"})
	if !errors.Is(err, ErrCUDAUnavailable) || !strings.Contains(err.Error(), "cuda:0") {
		t.Fatalf("cuda on a CPU-only box: err = %v", err)
	}
	auto, err := NewRuntime(RuntimeOptions{Library: rt.Library(), Device: "auto"})
	if err != nil {
		t.Fatal(err)
	}
	defer auto.Close()
	dev, why := auto.Device()
	if dev.CUDA || !strings.Contains(why, "using CPU") {
		t.Errorf("auto chose %v because %q", dev, why)
	}
	t.Logf("auto: %s (%s)", dev, why)
}
