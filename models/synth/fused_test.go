//go:build cgo

package synth

import (
	"bytes"
	"context"
	"math"
	"os"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// TestFusedAttentionMatchesPlain: the UNet and VAE decoder with attention
// as com.microsoft MultiHeadAttention compute what the MatMul-Softmax-
// MatMul graphs compute, within fp32 rounding, on ONNX Runtime's CPU.
func TestFusedAttentionMatchesPlain(t *testing.T) {
	needORT(t)
	plain, fused := t.TempDir(), t.TempDir()
	opts := Options{Preset: "tiny", Seed: 3}
	if _, err := Write(context.Background(), plain, opts, nil); err != nil {
		t.Fatal(err)
	}
	opts.FusedAttention = true
	if _, err := Write(context.Background(), fused, opts, nil); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		net, out string
		outShape []int64
	}{
		{"unet", "out_sample", []int64{1, 4, 8, 8}},
		{"vae_decoder", "sample", []int64{1, 3, 64, 64}},
	} {
		t.Run(tc.net, func(t *testing.T) {
			fusedPath := filepath.Join(fused, tc.net, "model.onnx")
			data, err := os.ReadFile(fusedPath)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Contains(data, []byte("MultiHeadAttention")) || !bytes.Contains(data, []byte(msDomain)) {
				t.Fatal("the fused graph has no com.microsoft MultiHeadAttention")
			}
			if plainData, _ := os.ReadFile(filepath.Join(plain, tc.net, "model.onnx")); bytes.Contains(plainData, []byte(msDomain)) {
				t.Fatal("the plain graph uses com.microsoft")
			}
			run := func(path string) []float64 {
				ins, _ := ioInfo(t, path)
				var names []string
				var values []ort.Value
				for _, in := range ins {
					shape := make([]int64, len(in.Dimensions))
					for i, d := range in.Dimensions {
						shape[i] = d
						if d < 0 {
							shape[i] = map[bool]int64{true: 1, false: 8}[i == 0]
						}
					}
					n := int64(1)
					for _, d := range shape {
						n *= d
					}
					vals := seq(n, 1)
					if in.Name == "timestep" {
						vals = []float64{500}
					}
					names = append(names, in.Name)
					values = append(values, tensorIn(t, dtFloat, shape, vals))
				}
				s := session(t, path, names, []string{tc.out})
				out := tensorOut(t, dtFloat, tc.outShape...)
				if err := s.Run(values, []ort.Value{out}); err != nil {
					t.Fatalf("run %s: %v", path, err)
				}
				return floatsOut(t, tc.out, dtFloat, out)
			}
			want, got := run(filepath.Join(plain, tc.net, "model.onnx")), run(fusedPath)
			var maxDiff, maxAbs float64
			for i := range want {
				maxDiff = math.Max(maxDiff, math.Abs(want[i]-got[i]))
				maxAbs = math.Max(maxAbs, math.Abs(want[i]))
			}
			if maxDiff > 1e-4*math.Max(1, maxAbs) {
				t.Errorf("fused and plain differ by up to %g (values up to %g)", maxDiff, maxAbs)
			}
			if maxAbs == 0 {
				t.Error("outputs are all zero: the comparison proves nothing")
			}
			t.Logf("max difference %g, largest value %g", maxDiff, maxAbs)
		})
	}
}
