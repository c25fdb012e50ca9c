//go:build cgo

package synth

import (
	"context"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// BenchmarkTiny times each network of the tiny preset at its native 64x64,
// fp32 on CPU, as a pipeline calls them: the text encoder and the UNet at
// batch 2 (classifier-free guidance), the VAE decoder once per image. One
// image costs text_encoder + steps x unet + vae_decoder.
func BenchmarkTiny(b *testing.B) {
	needORT(b)
	dir := filepath.Join(b.TempDir(), "m")
	if _, err := Write(context.Background(), dir, Options{Preset: "tiny"}, nil); err != nil {
		b.Fatal(err)
	}
	hidden := presets["tiny"].text.hidden
	ids := make([]int32, 2*77)
	for i := range ids {
		ids[i] = int32(i % 300)
	}
	cases := []struct {
		net     string
		inputs  []string
		values  []ort.Value
		outputs []string
		shapes  []ort.Shape
	}{
		{"text_encoder", []string{"input_ids"}, []ort.Value{newTensor(b, ids, 2, 77)},
			[]string{"last_hidden_state", "pooler_output"}, []ort.Shape{{2, 77, hidden}, {2, hidden}}},
		{"unet", []string{"sample", "timestep", "encoder_hidden_states"}, []ort.Value{
			newTensor(b, make([]float32, 2*4*8*8), 2, 4, 8, 8),
			newTensor(b, []float32{981, 981}, 2),
			newTensor(b, make([]float32, 2*77*hidden), 2, 77, hidden),
		}, []string{"out_sample"}, []ort.Shape{{2, 4, 8, 8}}},
		{"vae_decoder", []string{"latent_sample"}, []ort.Value{newTensor(b, make([]float32, 4*8*8), 1, 4, 8, 8)},
			[]string{"sample"}, []ort.Shape{{1, 3, 64, 64}}},
	}
	for _, tc := range cases {
		b.Run(tc.net, func(b *testing.B) {
			s, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, tc.net, modelFile), tc.inputs, tc.outputs, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Destroy()
			outs := make([]ort.Value, len(tc.shapes))
			for i, shape := range tc.shapes {
				outs[i] = newTensor(b, make([]float32, shape.FlattenedSize()), shape...)
			}
			for b.Loop() {
				if err := s.Run(tc.values, outs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func newTensor[T ort.TensorData](b *testing.B, data []T, shape ...int64) *ort.Tensor[T] {
	b.Helper()
	tn, err := ort.NewTensor(ort.NewShape(shape...), data)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = tn.Destroy() })
	return tn
}
