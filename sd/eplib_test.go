package sd

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// buildSharedLibrary compiles C source into dir/name with the system C
// compiler (cgo needs one anyway); extra goes on the command line after the
// source. It skips the test when there is no compiler.
func buildSharedLibrary(t *testing.T, dir, name, src string, extra ...string) string {
	t.Helper()
	cc, err := exec.LookPath("cc")
	if err != nil {
		t.Skipf("no C compiler to build a test library: %v", err)
	}
	srcPath := filepath.Join(dir, strings.TrimSuffix(name, filepath.Ext(name))+".c")
	if err := os.WriteFile(srcPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, name)
	args := append([]string{"-shared", "-fPIC", "-o", out, srcPath}, extra...)
	if msg, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		t.Fatalf("cc %v: %v\n%s", args, err, msg)
	}
	return out
}

// A plugin entry point that offers no factory, hence no device: what a
// real CUDA plugin does on a machine without an NVIDIA GPU.
const noDevicePlugin = `
#include <stddef.h>
void *CreateEpFactories(const char *name, const void *api_base, const void *logger,
                        void **factories, size_t max_factories, size_t *num_factories) {
	*num_factories = 0;
	return NULL;
}
void *ReleaseEpFactory(void *factory) { return NULL; }
`

// testLibraries builds the fake libraries the EP tests need, once per test.
type testLibraries struct {
	noDevice    string // CreateEpFactories, no device
	missingDep  string // CreateEpFactories, linked against a library that is gone
	bridgeOnly  string // GetProvider only: the older provider kind
	libc        string // a real shared library that is no EP
	text        string // not a library at all
	missingFile string
}

func buildTestLibraries(t *testing.T) testLibraries {
	t.Helper()
	dir := t.TempDir()
	var l testLibraries
	l.noDevice = buildSharedLibrary(t, dir, "libnodevice_ep.so", noDevicePlugin)
	dep := buildSharedLibrary(t, dir, "libsdgate_gone.so.13", "int sdgate_gone(void) { return 1; }\n", "-Wl,-soname,libsdgate_gone.so.13")
	l.missingDep = buildSharedLibrary(t, dir, "libneedsgone_ep.so",
		noDevicePlugin+"int sdgate_gone(void);\nint use_gone(void) { return sdgate_gone(); }\n", dep)
	if err := os.Remove(dep); err != nil {
		t.Fatal(err)
	}
	l.bridgeOnly = buildSharedLibrary(t, dir, "libbridge_only.so", "void *GetProvider(void) { return 0; }\n")
	l.text = filepath.Join(dir, "libtext.so")
	if err := os.WriteFile(l.text, []byte("this is not a library, only text long enough to have an ELF header's size\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	l.missingFile = filepath.Join(dir, "libabsent.so")
	for _, p := range []string{"/lib/x86_64-linux-gnu/libc.so.6", "/lib/aarch64-linux-gnu/libc.so.6", "/lib64/libc.so.6", "/usr/lib/libc.so.6"} {
		if _, err := os.Stat(p); err == nil {
			l.libc = p
			break
		}
	}
	return l
}

func TestCheckEPLibrary(t *testing.T) {
	l := buildTestLibraries(t)
	cases := []struct {
		name string
		path string
		want string // "" = accepted
	}{
		{"missing", l.missingFile, "does not exist"},
		{"directory", filepath.Dir(l.text), "is a directory"},
		{"text", l.text, "not a shared library"},
		{"provider bridge", l.bridgeOnly, "older kind"},
		{"plugin", l.noDevice, ""},
		{"plugin with missing dependency", l.missingDep, ""}, // found when loading, not here
		{"libc", l.libc, "exports no CreateEpFactories"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.path == "" {
				t.Skip("no libc found at the usual paths")
			}
			err := checkEPLibrary(c.path)
			if c.want == "" {
				if err != nil {
					t.Fatalf("checkEPLibrary(%s) = %v, want nil", c.path, err)
				}
				return
			}
			if !errors.Is(err, ErrEPLibrary) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.path) {
				t.Fatalf("checkEPLibrary(%s) = %v, want ErrEPLibrary naming the file and %q", c.path, err, c.want)
			}
		})
	}
}

// ONNX Runtime's own messages (1.29 / 1.30 on Linux), as they come back
// from RegisterExecutionProviderLibrary.
func TestExplainRegisterError(t *testing.T) {
	const lib = "/opt/ep/libonnxruntime_providers_cuda.so"
	cases := []struct {
		name, ort string
		want      []string
	}{
		{"cuda dependency missing",
			"Failed to load library " + lib + " with error: libcublasLt.so.13: cannot open shared object file: No such file or directory",
			[]string{lib + " needs libcublasLt.so.13", "CUDA runtime library", "LD_LIBRARY_PATH"}},
		{"other dependency missing",
			"Failed to load library " + lib + " with error: libfoo.so.2: cannot open shared object file: No such file or directory",
			[]string{lib + " needs libfoo.so.2"}},
		{"not an EP",
			"Failed to get symbol CreateEpFactories with error: " + lib + ": undefined symbol: CreateEpFactories",
			[]string{"exports no CreateEpFactories"}},
		{"something else",
			"Failed to load library " + lib + " with error: " + lib + ": file too short",
			[]string{"cannot register it", "file too short"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := explainRegisterError(lib, errors.New(c.ort))
			if !errors.Is(err, ErrEPLibrary) {
				t.Errorf("%v is not ErrEPLibrary", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

func TestPickGPUDevice(t *testing.T) {
	cpu := EPDevice{EP: "CPUExecutionProvider", EPVendor: "Microsoft", Type: "CPU", Vendor: "GenuineIntel"}
	gpu := func(id string) EPDevice {
		return EPDevice{EP: "CUDAExecutionProvider", EPVendor: "Microsoft", Type: "GPU", Vendor: "NVIDIA", VendorID: 0x10de, DeviceID: 0x2330,
			Options: map[string]string{"device_id": id}}
	}
	npu := EPDevice{EP: "OpenVINOExecutionProvider", Type: "NPU"}
	ovGPU := EPDevice{EP: "OpenVINOExecutionProvider", Type: "GPU"}
	unknown := EPDevice{EP: "MysteryExecutionProvider"}
	cases := []struct {
		name  string
		devs  []EPDevice
		eps   []string
		index int
		want  int // -1: ErrNoDevice
	}{
		{"first gpu", []EPDevice{cpu, gpu("0"), gpu("1")}, []string{"CUDAExecutionProvider"}, 0, 1},
		{"second gpu by device_id", []EPDevice{cpu, gpu("1"), gpu("0")}, []string{"CUDAExecutionProvider"}, 1, 1},
		{"index beyond the gpus", []EPDevice{cpu, gpu("0")}, []string{"CUDAExecutionProvider"}, 1, -1},
		{"only the cpu", []EPDevice{cpu}, nil, 0, -1},
		{"cpu provider not counted even if listed", []EPDevice{cpu}, []string{"CPUExecutionProvider"}, 0, -1},
		{"npu skipped, gpu by order", []EPDevice{cpu, npu, ovGPU}, []string{"OpenVINOExecutionProvider"}, 0, 2},
		{"gpu of another library skipped", []EPDevice{gpu("0"), ovGPU}, []string{"OpenVINOExecutionProvider"}, 0, 1},
		{"type unreadable counts as gpu", []EPDevice{cpu, unknown}, []string{"MysteryExecutionProvider"}, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := pickGPUDevice(c.devs, c.eps, c.index)
			if c.want >= 0 {
				if err != nil || got != c.want {
					t.Fatalf("pickGPUDevice = %d, %v; want %d", got, err, c.want)
				}
				return
			}
			if !errors.Is(err, ErrNoDevice) {
				t.Fatalf("err = %v, want ErrNoDevice", err)
			}
			if !strings.Contains(err.Error(), "no GPU device of index") || !strings.Contains(err.Error(), "CPUExecutionProvider (Microsoft)") {
				t.Errorf("%q does not list the devices", err)
			}
		})
	}
}

// The OrtApi entries read through cgo must describe the CPU provider's
// device correctly on the real library: a wrong index would show here.
func TestEPDevicesDescribeTheCPU(t *testing.T) {
	rt := testRuntime(t)
	devs, err := rt.EPDevices()
	if err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, d := range devs {
		t.Logf("%s metadata=%v", d, d.Metadata)
		if d.EP == "CPUExecutionProvider" {
			found = true
			if d.Type != "CPU" || d.EPVendor != "Microsoft" || d.Vendor == "" {
				t.Errorf("CPU provider's device = %+v, want type CPU, vendor Microsoft and a hardware vendor", d)
			}
		}
	}
	if !found {
		t.Fatalf("no CPUExecutionProvider among %v", devs)
	}
}
