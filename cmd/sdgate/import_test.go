package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// onnxDoc is the encoded doc_string field (6) of a ModelProto.
func onnxDoc(doc string) []byte { return append([]byte{0x32, byte(len(doc))}, doc...) }

// TestSynthCheckpointImport: synth --checkpoint, then import, gives the
// same folder (model.onnx differs only in its doc string) and, on ONNX
// Runtime, the same image bytes.
func TestSynthCheckpointImport(t *testing.T) {
	for _, tc := range []struct {
		name      string
		synthArgs []string
		importArg []string
	}{
		{"fp32", nil, []string{"--fp32"}},
		{"fp16 inpaint", []string{"--fp16", "--inpaint"}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			ckpt := filepath.Join(root, "tiny.safetensors")
			a, b := filepath.Join(root, "a", "tiny"), filepath.Join(root, "b", "tiny")
			var stdout, stderr bytes.Buffer
			args := append([]string{"synth", "--out", a, "--seed", "7", "--checkpoint", ckpt}, tc.synthArgs...)
			if err := run(context.Background(), args, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("synth: %v\n%s", err, stderr.String())
			}
			stdout.Reset()
			args = append([]string{"import", ckpt, "--out", b}, tc.importArg...)
			if err := run(context.Background(), args, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("import: %v\n%s", err, stderr.String())
			}
			for _, want := range []string{"every checkpoint tensor was used", "weights from tiny.safetensors", "MB/s"} {
				if !strings.Contains(stdout.String(), want) {
					t.Errorf("import output lacks %q:\n%s", want, stdout.String())
				}
			}
			synthDoc := onnxDoc("sdgate synth: preset tiny, seed 7, random weights")
			importDoc := onnxDoc("sdgate import: tiny.safetensors")
			for _, name := range []string{"text_encoder/model.onnx", "unet/model.onnx", "vae_decoder/model.onnx", "vae_encoder/model.onnx",
				"tokenizer/vocab.json", "tokenizer/merges.txt", "scheduler/scheduler_config.json", "model_index.json"} {
				want, err := os.ReadFile(filepath.Join(a, name))
				if err != nil {
					t.Fatal(err)
				}
				got, err := os.ReadFile(filepath.Join(b, name))
				if err != nil {
					t.Fatal(err)
				}
				if !bytes.Equal(bytes.Replace(got, importDoc, synthDoc, 1), want) {
					t.Errorf("%s differs", name)
				}
			}
			if strings.Contains(tc.name, "inpaint") {
				return // the image check needs the text-to-image pipeline
			}
			tinyModels(t) // skips without ONNX Runtime
			image := func(model, prefix string) []byte {
				var o, e bytes.Buffer
				err := run(context.Background(), []string{"generate", "--model", model, "--prompt", "a lighthouse", "--seed", "3",
					"--steps", "2", "--size", "64x64", "--out", prefix}, mapEnv(nil), &o, &e)
				if err != nil {
					t.Fatalf("generate: %v\n%s", err, e.String())
				}
				data, err := os.ReadFile(prefix + ".png")
				if err != nil {
					t.Fatal(err)
				}
				return data
			}
			if !bytes.Equal(image(a, filepath.Join(root, "a")), image(b, filepath.Join(root, "b"))) {
				t.Error("the imported folder draws another image than synth's")
			}
		})
	}
}

func TestImportRefuses(t *testing.T) {
	dir := t.TempDir()
	pickle := filepath.Join(dir, "model.ckpt")
	if err := os.WriteFile(pickle, []byte{0x80, 0x02}, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"import", "--out", filepath.Join(dir, "x")}, "give the checkpoint file"},
		{[]string{"import", pickle}, "--out is required"},
		{[]string{"import", pickle, "--out", filepath.Join(dir, "x")}, "executes arbitrary code"},
		{[]string{"import", pickle, "--out", filepath.Join(dir, "x"), "--fp16", "--fp32"}, "exclude each other"},
	} {
		var stdout, stderr bytes.Buffer
		err := run(context.Background(), tc.args, mapEnv(nil), &stdout, &stderr)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err %v, want %q", tc.args, err, tc.want)
		}
	}
}
