package main

import (
	"bytes"
	"context"
	"image/png"
	"os"
	"path/filepath"
	"testing"
)

// TestFusedAttentionSameImage: a folder written with --attention fused
// (com.microsoft MultiHeadAttention) draws the image of the plain one
// within fp32 rounding (a pixel level at most) on the CPU, in fp32 and fp16.
func TestFusedAttentionSameImage(t *testing.T) {
	tinyModels(t) // skips without ONNX Runtime
	root := t.TempDir()
	for _, precision := range []string{"--fp16=false", "--fp16"} {
		var images [2][]byte
		for i, attention := range []string{"plain", "fused"} {
			dir := filepath.Join(root, precision+attention)
			var stdout, stderr bytes.Buffer
			if err := run(context.Background(), []string{"synth", "--out", dir, "--seed", "9", precision, "--attention", attention},
				mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("synth: %v\n%s", err, stderr.String())
			}
			prefix := filepath.Join(root, precision+attention+"-img")
			if err := run(context.Background(), []string{"generate", "--model", dir, "--prompt", "a lighthouse", "--seed", "3",
				"--steps", "3", "--size", "64x64", "--out", prefix}, mapEnv(nil), &stdout, &stderr); err != nil {
				t.Fatalf("generate %s: %v\n%s", attention, err, stderr.String())
			}
			data, err := os.ReadFile(prefix + ".png")
			if err != nil {
				t.Fatal(err)
			}
			images[i] = data
		}
		a, err := png.Decode(bytes.NewReader(images[0]))
		if err != nil {
			t.Fatal(err)
		}
		b, err := png.Decode(bytes.NewReader(images[1]))
		if err != nil {
			t.Fatal(err)
		}
		maxDiff, differ := 0, 0
		for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
			for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
				ar, ag, ab, _ := a.At(x, y).RGBA()
				br, bg, bb, _ := b.At(x, y).RGBA()
				for _, d := range []int{int(ar>>8) - int(br>>8), int(ag>>8) - int(bg>>8), int(ab>>8) - int(bb>>8)} {
					if d < 0 {
						d = -d
					}
					if d > 0 {
						differ++
					}
					maxDiff = max(maxDiff, d)
				}
			}
		}
		if maxDiff > 1 {
			t.Errorf("%s: fused and plain images differ by up to %d levels (%d channels differ)", precision, maxDiff, differ)
		}
		t.Logf("%s: max difference %d levels, %d channel values differ", precision, maxDiff, differ)
	}
}
