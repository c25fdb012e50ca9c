package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

// gpucheckModel writes the tiny preset for one test, skipping without ONNX
// Runtime.
func gpucheckModel(t *testing.T) string {
	t.Helper()
	ortest.Library(t)
	dir := filepath.Join(t.TempDir(), "tiny")
	if _, err := synth.Write(context.Background(), dir, synth.Options{Preset: "tiny"}, nil); err != nil {
		t.Fatal(err)
	}
	return dir
}

func runGPUCheckForTest(model string, extra ...string) (string, string, error) {
	args := append([]string{"gpucheck", "--model", model, "--size", "64x64", "--steps", "2,3", "--bench-steps", "3", "--runs", "2"}, extra...)
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestGPUCheckOnCPU(t *testing.T) {
	model := gpucheckModel(t)
	missing := filepath.Join(t.TempDir(), "libonnxruntime_providers_cuda.so")
	cases := []struct {
		name string
		args []string
		want []string
	}{
		{"cpu", []string{"--device", "cpu"}, []string{"device                 cpu: cpu requested", "provider               CPUExecutionProvider"}},
		{"batching table", []string{"--device", "cpu", "--batch", "1,2"}, []string{"batching c=1 ", "batching c=2 ", "images/s alone"}},
		{"auto without a usable library falls back and says why", []string{"--device", "auto", "--ep-library", missing},
			[]string{"device                 cpu: CUDA not usable, using CPU", missing + " does not exist"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stdout, stderr, err := runGPUCheckForTest(model, c.args...)
			if err != nil {
				t.Fatalf("gpucheck: %v\n%s", err, stderr)
			}
			want := append([]string{
				"ep device 0            CPUExecutionProvider (Microsoft) on ",
				"model                  " + model + " (fp32, native 64x64)",
				"session text_encoder", "session unet", "session vae_decoder", "sessions total",
				"unet step batch 1", "unet step batch 2", "over 4 steps (64x64)", // 2 runs of 3 steps, the first of each not counted
				"end to end 2 steps", "end to end 3 steps", "s/image median",
				"vae decode", "over 8 decodes", // every timed run decodes once; the warm-up ones are not counted
				"memory peak seen       process peak RSS",
			}, c.want...)
			for _, w := range want {
				if !strings.Contains(stdout, w) {
					t.Errorf("stdout lacks %q:\n%s", w, stdout)
				}
			}
			if strings.Contains(stdout, "TFLOP") {
				t.Errorf("the SD 1.5 compute floor is quoted at 64x64:\n%s", stdout)
			}
		})
	}
}

func TestGPUCheckErrors(t *testing.T) {
	model := gpucheckModel(t)
	missing := filepath.Join(t.TempDir(), "libmissing_ep.so")
	cases := []struct {
		name string
		args []string
		is   error
		want string
	}{
		{"cuda with a missing library", []string{"--device", "cuda:0", "--ep-library", missing}, sd.ErrEPLibrary, missing},
		{"cuda without a provider", []string{"--device", "cuda"}, sd.ErrCUDAUnavailable, "cuda:0"},
		{"bad steps", []string{"--steps", "20,x"}, nil, "--steps"},
		{"too few bench steps", []string{"--bench-steps", "1"}, nil, "--bench-steps"},
		{"bad size", []string{"--size", "big"}, nil, "--size"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := runGPUCheckForTest(model, c.args...)
			if err == nil || !strings.Contains(err.Error(), c.want) || (c.is != nil && !errors.Is(err, c.is)) {
				t.Fatalf("err = %v, want one naming %q (is %v)", err, c.want, c.is)
			}
		})
	}
	t.Run("no model", func(t *testing.T) {
		var stdout, stderr bytes.Buffer
		if err := run(context.Background(), []string{"gpucheck"}, func(string) string { return "" }, &stdout, &stderr); err == nil || !strings.Contains(err.Error(), "--model") {
			t.Fatalf("err = %v", err)
		}
	})
}

func TestRuntimeFlagsEPLibraries(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		want     []string
		fallback bool
	}{
		{"none", nil, nil, nil, false},
		{"repeated", []string{"--ep-library", "/a/x.so", "--ep-library", "/b/y.so"}, nil, []string{"/a/x.so", "/b/y.so"}, false},
		{"list", []string{"--ep-library", "/a/x.so:/b/y.so"}, nil, []string{"/a/x.so", "/b/y.so"}, false},
		{"environment", nil, map[string]string{"SDGATE_EP_LIBRARY": "/c/z.so", "SDGATE_ALLOW_CPU_FALLBACK": "true"}, []string{"/c/z.so"}, true},
		{"flag wins", []string{"--ep-library", "/a/x.so", "--allow-cpu-fallback=false"}, map[string]string{"SDGATE_EP_LIBRARY": "/c/z.so", "SDGATE_ALLOW_CPU_FALLBACK": "true"}, []string{"/a/x.so"}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var rf runtimeFlags
			fs := flag.NewFlagSet("test", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			rf.register(fs)
			if err := parseFlags(fs, c.args, func(k string) string { return c.env[k] }); err != nil {
				t.Fatal(err)
			}
			opts, err := rf.options(nil)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(opts.EPLibraries, c.want) || opts.AllowCPUFallback != c.fallback {
				t.Errorf("EPLibraries = %q, AllowCPUFallback = %v; want %q, %v", opts.EPLibraries, opts.AllowCPUFallback, c.want, c.fallback)
			}
		})
	}
}
