package models

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// bigFile is larger than WholeFileLimit, so it is sampled.
const bigFile = WholeFileLimit + 3*SampleWindowBytes + 12345

// writeModel lays out a small model folder with one sampled weights file.
func writeModel(t *testing.T, dir string) {
	t.Helper()
	weights := make([]byte, bigFile)
	if _, err := rand.NewChaCha8([32]byte{1}).Read(weights); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"model_index.json":                []byte(`{"_class_name": "StableDiffusionPipeline"}`),
		"tokenizer/vocab.json":            []byte(`{"a": 0}`),
		"scheduler/scheduler_config.json": []byte(`{"num_train_timesteps": 1000}`),
		"unet/model.onnx":                 weights,
		"text_encoder/model.onnx":         []byte("small graph"),
		"vae_decoder/model.onnx":          []byte("decoder"),
	}
	for name, b := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mustDigest(t *testing.T, dir string) string {
	t.Helper()
	d, err := FolderDigest(dir)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// patchByte flips one byte of a file in place, keeping its size.
func patchByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func TestModelDigest(t *testing.T) {
	base := t.TempDir()
	writeModel(t, base)
	want := mustDigest(t, base)

	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		same   bool
	}{
		{"untouched", func(*testing.T, string) {}, true},
		{"other modification times", func(t *testing.T, dir string) {
			old := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC)
			if err := os.Chtimes(filepath.Join(dir, "unet/model.onnx"), old, old); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"small file content", func(t *testing.T, dir string) {
			patchByte(t, filepath.Join(dir, "scheduler/scheduler_config.json"), 3)
		}, false},
		{"weights first byte", func(t *testing.T, dir string) {
			patchByte(t, filepath.Join(dir, "unet/model.onnx"), 0)
		}, false},
		{"weights last byte", func(t *testing.T, dir string) {
			patchByte(t, filepath.Join(dir, "unet/model.onnx"), bigFile-1)
		}, false},
		{"weights in a middle window", func(t *testing.T, dir string) {
			last := int64(bigFile - SampleWindowBytes)
			patchByte(t, filepath.Join(dir, "unet/model.onnx"), last*(SampleWindows/2)/(SampleWindows-1)+17)
		}, false},
		{"weights size", func(t *testing.T, dir string) {
			f, err := os.OpenFile(filepath.Join(dir, "unet/model.onnx"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if _, err := f.Write([]byte{0}); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file renamed", func(t *testing.T, dir string) {
			if err := os.Rename(filepath.Join(dir, "vae_decoder/model.onnx"), filepath.Join(dir, "vae_decoder/model2.onnx")); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"file added", func(t *testing.T, dir string) {
			if err := os.WriteFile(filepath.Join(dir, "unet/model.onnx_data"), []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
		}, false},
		{"weights behind a symlink", func(t *testing.T, dir string) {
			blob := filepath.Join(t.TempDir(), "blob")
			unet := filepath.Join(dir, "unet/model.onnx")
			if err := os.Rename(unet, blob); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(blob, unet); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"directory behind a symlink", func(t *testing.T, dir string) {
			moved := filepath.Join(t.TempDir(), "tokenizer")
			if err := os.Rename(filepath.Join(dir, "tokenizer"), moved); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(moved, filepath.Join(dir, "tokenizer")); err != nil {
				t.Fatal(err)
			}
		}, true},
		{"a symlink loop is read once", func(t *testing.T, dir string) {
			if err := os.Symlink(dir, filepath.Join(dir, "unet/loop")); err != nil {
				t.Fatal(err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			writeModel(t, dir) // a second copy: other paths and mtimes
			tt.change(t, dir)
			got := mustDigest(t, dir)
			if (got == want) != tt.same {
				t.Errorf("digest %s, base %s; want same=%v", got, want, tt.same)
			}
		})
	}
}

func TestModelDigestErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := FolderDigest(file); !errors.Is(err, ErrNotModelDir) {
		t.Errorf("FolderDigest(file) err = %v, want ErrNotModelDir", err)
	}
	if _, err := FolderDigest(filepath.Join(t.TempDir(), "absent")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("FolderDigest(absent) err = %v, want ErrNotExist", err)
	}
	dangling := t.TempDir()
	if err := os.Symlink(filepath.Join(dangling, "nowhere"), filepath.Join(dangling, "model.onnx")); err != nil {
		t.Fatal(err)
	}
	if _, err := FolderDigest(dangling); err == nil {
		t.Error("FolderDigest with a dangling link: no error")
	}
}
