package main

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
)

func TestSynthCommand(t *testing.T) {
	cases := []struct {
		name     string
		args     []string
		env      map[string]string
		wantSeed uint64
		wantFP16 bool
		wantFile string
	}{
		{"defaults", nil, nil, 0, false, "unet/model.onnx"},
		{"flags", []string{"--seed", "9", "--fp16", "--external-data"}, nil, 9, true, "unet/model.onnx_data"},
		{"environment", nil, map[string]string{"SDGATE_SEED": "4", "SDGATE_FP16": "true"}, 4, true, "unet/model.onnx"},
		{"flags win", []string{"--seed", "1", "--fp16=false"}, map[string]string{"SDGATE_SEED": "4", "SDGATE_FP16": "true"}, 1, false, "unet/model.onnx"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "tiny")
			var stdout, stderr strings.Builder
			args := append([]string{"synth", "--out", dir}, tc.args...)
			getenv := func(k string) string { return tc.env[k] }
			if err := run(context.Background(), args, getenv, &stdout, &stderr); err != nil {
				t.Fatalf("run: %v\nstderr:\n%s", err, stderr.String())
			}
			for _, want := range []string{"wrote " + dir, "unet", "parameters", tc.wantFile} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("stdout lacks %q:\n%s", want, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), "unet: done in") {
				t.Errorf("stderr lacks progress:\n%s", stderr.String())
			}
			data, err := os.ReadFile(filepath.Join(dir, synth.ManifestFile))
			if err != nil {
				t.Fatal(err)
			}
			var m synth.Manifest
			if err := json.Unmarshal(data, &m); err != nil {
				t.Fatal(err)
			}
			if m.Seed != tc.wantSeed || m.FP16 != tc.wantFP16 || m.Preset != "tiny" {
				t.Errorf("manifest %+v, want seed %d fp16 %v", m, tc.wantSeed, tc.wantFP16)
			}
		})
	}
}

func TestSynthCommandErrors(t *testing.T) {
	cases := []struct {
		name string
		args []string
		want error // nil: any error
	}{
		{"no out", []string{"synth"}, nil},
		{"bad preset", []string{"synth", "--out", "OUT", "--preset", "sdxl-huge"}, synth.ErrUnknownPreset},
		{"bad timestep", []string{"synth", "--out", "OUT", "--timestep", "int32"}, synth.ErrBadTimestep},
		{"bad fp16", []string{"synth", "--out", "OUT", "--fp16=maybe"}, nil},
		{"stray argument", []string{"synth", "--out", "OUT", "extra"}, nil},
		{"sdxl lcm", []string{"synth", "--out", "OUT", "--preset", "sdxl-tiny", "--lcm"}, synth.ErrUnknownPreset},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "m")
			args := make([]string, len(tc.args))
			for i, a := range tc.args {
				args[i] = strings.ReplaceAll(a, "OUT", out)
			}
			var stdout, stderr strings.Builder
			err := run(context.Background(), args, func(string) string { return "" }, &stdout, &stderr)
			if err == nil || (tc.want != nil && !errors.Is(err, tc.want)) {
				t.Fatalf("run: got %v, want %v", err, tc.want)
			}
			if _, statErr := os.Stat(out); !errors.Is(statErr, os.ErrNotExist) {
				t.Errorf("a failed synth created %s", out)
			}
		})
	}
}

func TestHumanBytes(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0 B"}, {999, "999 B"}, {1000, "1.00 kB"}, {1_719_241_678, "1.72 GB"}, {3_438_000_000_000, "3.44 TB"},
	}
	for _, tc := range cases {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestGroupThousands(t *testing.T) {
	cases := []struct {
		n    int64
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {859_520_964, "859,520,964"}, {-1234, "-1,234"},
	}
	for _, tc := range cases {
		if got := groupThousands(tc.n); got != tc.want {
			t.Errorf("groupThousands(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}
