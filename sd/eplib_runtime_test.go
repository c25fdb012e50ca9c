package sd

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
)

// Every way --ep-library can fail on a machine without a GPU: cuda must
// fail with an error naming what is missing, auto must use the CPU and say
// why, cpu must not look at the libraries at all.
func TestRuntimeWithEPLibraries(t *testing.T) {
	rt := testRuntime(t) // keeps the environment (and registrations) alive across cases
	l := buildTestLibraries(t)
	cases := []struct {
		name    string
		device  string
		libs    []string
		chdir   string
		is      []error // for cuda; auto must come back on the CPU with the message
		mention []string
	}{
		{"missing file", "cuda:0", []string{l.missingFile}, "", []error{ErrEPLibrary, ErrCUDAUnavailable}, []string{l.missingFile, "does not exist", "cuda:0"}},
		{"text file", "cuda", []string{l.text}, "", []error{ErrEPLibrary}, []string{l.text, "not a shared library"}},
		{"libc", "cuda:0", []string{l.libc}, "", []error{ErrEPLibrary}, []string{"CreateEpFactories"}},
		{"onnx runtime itself", "cuda:0", []string{rt.Library()}, "", []error{ErrEPLibrary}, []string{rt.Library(), "CreateEpFactories"}},
		{"provider bridge", "cuda:0", []string{l.bridgeOnly}, "", []error{ErrEPLibrary}, []string{"beside libonnxruntime.so"}},
		{"dependency missing", "cuda:0", []string{l.missingDep}, "", []error{ErrEPLibrary, ErrCUDAUnavailable}, []string{"needs libsdgate_gone.so.13"}},
		{"no GPU device", "cuda:0", []string{l.noDevice}, "", []error{ErrNoDevice, ErrCUDAUnavailable}, []string{"no GPU device of index 0 among: CPUExecutionProvider", "offered no device"}},
		{"no GPU device of index 2", "cuda:2", []string{l.noDevice}, "", []error{ErrNoDevice}, []string{"no GPU device of index 2", "cuda:2"}},
		{"relative path is the working directory's", "cuda:0", []string{filepath.Base(l.noDevice)}, filepath.Dir(l.noDevice), []error{ErrNoDevice}, nil},
		{"auto, missing file", "auto", []string{l.missingFile}, "", nil, []string{"using CPU", l.missingFile, "does not exist"}},
		{"auto, no GPU device", "auto", []string{l.noDevice}, "", nil, []string{"using CPU", "no GPU device of index 0"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, lib := range c.libs {
				if lib == "" {
					t.Skip("no libc found at the usual paths")
				}
			}
			if c.chdir != "" {
				t.Chdir(c.chdir)
			}
			var logs bytes.Buffer
			got, err := NewRuntime(RuntimeOptions{Library: rt.Library(), Device: c.device, EPLibraries: c.libs,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			if c.device == "auto" {
				if err != nil {
					t.Fatalf("auto: %v", err)
				}
				defer got.Close()
				dev, why := got.Device()
				t.Logf("auto: %s", why)
				if dev.CUDA || got.Provider().Name != "CPUExecutionProvider" {
					t.Errorf("auto chose %v / %v", dev, got.Provider())
				}
				for _, m := range c.mention {
					if !strings.Contains(why, m) {
						t.Errorf("reason %q lacks %q", why, m)
					}
				}
				// Once, short, at INFO; the provider's long reason only at debug.
				if n := strings.Count(logs.String(), "using CPU"); n != 1 {
					t.Errorf("the CPU choice is logged %d times at INFO, want once: %s", n, logs.String())
				}
				for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
					if len(line) > 400 {
						t.Errorf("INFO line of %d characters: %s", len(line), line)
					}
				}
				return
			}
			if err == nil {
				got.Close()
				t.Fatalf("%s with %v: no error", c.device, c.libs)
			}
			t.Logf("%s: %v", c.device, err)
			for _, want := range c.is {
				if !errors.Is(err, want) {
					t.Errorf("%v is not %v", err, want)
				}
			}
			for _, m := range c.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("%q lacks %q", err, m)
				}
			}
		})
	}
	t.Run("cpu ignores the libraries", func(t *testing.T) {
		cpu, err := NewRuntime(RuntimeOptions{Library: rt.Library(), Device: "cpu", EPLibraries: []string{l.missingFile}})
		if err != nil {
			t.Fatal(err)
		}
		defer cpu.Close()
		if p := cpu.Provider(); p.Name != "CPUExecutionProvider" || p.Library != "" {
			t.Errorf("provider = %+v", p)
		}
	})
}

// cudaOnThisBox is a runtime that believes it runs on CUDA although this
// machine has none, so every CUDA session fails as it would on a GPU host
// whose CUDA libraries are broken. It shares base's environment and must
// not be closed.
func cudaOnThisBox(base *Runtime, allow bool, logs *bytes.Buffer) *Runtime {
	return &Runtime{
		opts:    RuntimeOptions{AllowCPUFallback: allow},
		library: base.library,
		log:     slog.New(slog.NewTextHandler(logs, nil)),
		device:  Device{CUDA: true},
		reason:  "forced by the test",
	}
}

func TestCUDASessionFailure(t *testing.T) {
	base := testRuntime(t)
	dir := filepath.Join(t.TempDir(), "tiny")
	if _, err := synth.Write(context.Background(), dir, synth.Options{Preset: "tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	t.Run("without fallback the network and cause are named", func(t *testing.T) {
		var logs bytes.Buffer
		_, err := Load(ctx, cudaOnThisBox(base, false, &logs), dir, LoadOptions{SkipVAEEncoder: true})
		if !errors.Is(err, ErrCUDAUnavailable) {
			t.Fatalf("err = %v, want ErrCUDAUnavailable", err)
		}
		t.Log(err)
		for _, want := range []string{"text_encoder", "cuda:0", "create session"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("%q lacks %q", err, want)
			}
		}
	})

	t.Run("with fallback each network runs on the CPU and says why", func(t *testing.T) {
		var logs bytes.Buffer
		rt := cudaOnThisBox(base, true, &logs)
		m, err := Load(ctx, rt, dir, LoadOptions{SkipVAEEncoder: true})
		if err != nil {
			t.Fatal(err)
		}
		defer m.Close()
		for _, n := range m.Networks() {
			if n.Device != "cpu" {
				t.Errorf("%s on %s, want cpu", n.Name, n.Device)
			}
		}
		fb := rt.Fallbacks()
		if len(fb) != 3 {
			t.Fatalf("fallbacks = %q, want one per network", fb)
		}
		for i, name := range []string{"text_encoder", "unet", "vae_decoder"} {
			if !strings.HasPrefix(fb[i], name+": ") || !strings.Contains(fb[i], ErrCUDAUnavailable.Error()) {
				t.Errorf("fallback %d = %q", i, fb[i])
			}
			if !strings.Contains(logs.String(), "network="+name) {
				t.Errorf("no warning for %s in %s", name, logs.String())
			}
		}
		if _, err := m.Generate(ctx, Request{Prompt: "x", Steps: 1, Seed: 1, HasSeed: true}); err != nil {
			t.Fatalf("generate after fallback: %v", err)
		}
	})
}

// ONNX Runtime's error texts for the failures a GPU run meets.
func TestExplainORTError(t *testing.T) {
	gpu := Device{CUDA: true}
	cases := []struct {
		ort  string
		want error // nil: left as it is
		hint string
	}{
		{"CUDA failure 2: out of memory ; GPU=0 ; hostname=h ; file=cuda_allocator.cc ; line=47 ; expr=cudaMalloc((void**)&p, size);", ErrOutOfMemory, "on cuda:0"},
		{"Failed to allocate memory for requested buffer of size 3221225472", ErrOutOfMemory, "smaller size"},
		{"Available memory of 1048576 is smaller than requested bytes of 2097152", ErrOutOfMemory, ""},
		{"CUBLAS failure 3: CUBLAS_STATUS_ALLOC_FAILED ; GPU=0", ErrOutOfMemory, ""},
		{"CUDNN failure 4: CUDNN_STATUS_ALLOC_FAILED", ErrOutOfMemory, ""},
		{"CUDA failure 100: no CUDA-capable device is detected ; GPU=0", ErrNoDevice, "sees no GPU"},
		{"CUDA failure 101: invalid device ordinal ; GPU=3", ErrNoDevice, "index"},
		{"CUDA failure 35: CUDA driver version is insufficient for CUDA runtime version", ErrCUDAUnavailable, "driver 580"},
		{"Unable to dlopen libcuda.so.1 : libcuda.so.1: cannot open shared object file", ErrCUDAUnavailable, "no NVIDIA driver"},
		{"cuDNN library was not found", ErrCUDAUnavailable, "libcudnn.so.9"},
		{"libcurand.so.10: cannot open shared object file: No such file or directory", ErrCUDAUnavailable, "needs libcurand.so.10"},
		{"Failed to load library /opt/ort/libonnxruntime_providers_cuda.so with error: libcudnn.so.9: cannot open shared object file", ErrCUDAUnavailable, "cuDNN 9"},
		{"Failed to load library /opt/ort/libonnxruntime_providers_cuda.so with error: libcuda.so.1: cannot open shared object file", ErrCUDAUnavailable, "no NVIDIA driver"},
		{"Failed to load library /opt/ort/libonnxruntime_providers_shared.so with error: /opt/ort/libonnxruntime_providers_shared.so: cannot open shared object file", ErrCUDAUnavailable, "beside libonnxruntime.so"},
		{"CUDA execution provider is not enabled in this build.", ErrCUDAUnavailable, "built without CUDA"},
		{"OrtSessionOptionsAppendExecutionProvider_Cuda: Failed to load shared library", ErrCUDAUnavailable, "beside libonnxruntime.so"},
		{"Got invalid dimensions for input: sample", nil, ""},
	}
	for _, c := range cases {
		t.Run(c.ort, func(t *testing.T) {
			orig := errors.New(c.ort)
			err := explainORTError(orig, gpu)
			if c.want == nil {
				if err != orig {
					t.Fatalf("unrecognised error changed: %v", err)
				}
				return
			}
			if !errors.Is(err, c.want) || !errors.Is(err, orig) {
				t.Fatalf("%v: want %v wrapping the original", err, c.want)
			}
			if !strings.Contains(err.Error(), c.ort) || !strings.Contains(err.Error(), c.hint) {
				t.Errorf("%q lacks the original text or %q", err, c.hint)
			}
			if again := explainORTError(err, gpu); again != err {
				t.Errorf("explained twice: %v", again)
			}
		})
	}
	if err := explainORTError(fmt.Errorf("run unet: %w", ErrOutOfMemory), gpu); strings.Count(err.Error(), "out of memory") != 1 {
		t.Errorf("sentinel errors are explained again: %v", err)
	}
}
