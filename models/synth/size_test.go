package synth

import (
	"context"
	"math"
	"testing"
)

type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}

// encodedSize streams m to a byte counter with zeroed weights: the bytes
// writeNetwork would write, without drawing a billion random numbers.
func encodedSize(t *testing.T, m *model) int64 {
	t.Helper()
	var c countingWriter
	ww := newWireWriter(&c)
	ww.zeroWeights = true
	m.emit(context.Background(), ww)
	if ww.err != nil {
		t.Fatalf("emit %s: %v", m.graph.name, ww.err)
	}
	return c.n
}

func sd15Graphs(fp16 bool) map[string]*graph {
	p := presets["sd15"]
	p.text.vocab = 49408 // CLIP's, as with --clip-bpe
	o := netOptions{float: dtFloat, timestep: TimestepFloatBatch}
	if fp16 {
		o.float = dtFloat16
	}
	return map[string]*graph{
		"text_encoder": buildTextEncoder(p.text, o, false),
		"unet":         buildUNet(p.unet, o),
		"vae_decoder":  buildVAEDecoder(p.vae, o),
		"vae_encoder":  buildVAEEncoder(p.vae, o, false),
	}
}

// TestSD15ParamCounts: the sd15 preset has exactly the parameter counts of
// the real SD 1.5 networks (diffusers/transformers numel sums).
func TestSD15ParamCounts(t *testing.T) {
	want := map[string]int64{
		"text_encoder": 123_060_480, // CLIPTextModel ViT-L/14
		"unet":         859_520_964, // UNet2DConditionModel
		"vae_decoder":  49_490_199,  // decoder + post_quant_conv
		"vae_encoder":  34_163_664,  // encoder + quant_conv
	}
	for name, g := range sd15Graphs(true) {
		t.Run(name, func(t *testing.T) {
			if got := g.paramCount(); got != want[name] {
				t.Errorf("%d parameters, want %d", got, want[name])
			}
		})
	}
}

// TestSD15StreamSizes streams every sd15 network (zeroed weights) through a
// byte counter: what is written equals what was announced, message by
// message (wireWriter checks each) and in total.
func TestSD15StreamSizes(t *testing.T) {
	for _, precision := range []string{"fp16", "fp32"} {
		for name, g := range sd15Graphs(precision == "fp16") {
			m := &model{graph: g}
			if name == "unet" && precision == "fp32" {
				placeExternal(g) // 3.4 GB inline is not writable; see TestTooLargeGoesExternal
			}
			t.Run(precision+" "+name, func(t *testing.T) {
				if got, want := encodedSize(t, m), m.size(); got != want {
					t.Errorf("streamed %d bytes, size() said %d", got, want)
				}
			})
		}
	}
}

// TestTooLargeGoesExternal: the fp16 UNet fits one protobuf, the fp32 one
// only with its weights in model.onnx_data.
func TestTooLargeGoesExternal(t *testing.T) {
	fp16 := &model{graph: sd15Graphs(true)["unet"]}
	if s := fp16.size(); s > protobufLimit || s < 1_719_041_928 {
		t.Errorf("fp16 unet: %d bytes, want 2*params plus a little, under %d", s, protobufLimit)
	}
	g := sd15Graphs(false)["unet"]
	fp32 := &model{graph: g}
	if s := fp32.size(); s <= protobufLimit {
		t.Errorf("fp32 unet inline: %d bytes, want more than %d", s, protobufLimit)
	}
	params := placeExternal(g)
	var data, next int64
	for _, p := range params {
		if p.ext.offset != next || p.ext.location != dataFile {
			t.Fatalf("%s at %s+%d, want offset %d", p.name, p.ext.location, p.ext.offset, next)
		}
		next += p.ext.bytes
		data += p.dataBytes()
	}
	if data != 4*859_520_964 {
		t.Errorf("external data %d bytes, want 4 per parameter", data)
	}
	if s := fp32.size(); s > 1<<20 {
		t.Errorf("fp32 unet with external data: model.onnx %d bytes, want under 1 MiB", s)
	}
}

// TestSplitMix pins the generator to SplitMix64's published first outputs
// for state 0: weights must not change under anyone's feet.
func TestSplitMix(t *testing.T) {
	r := splitMix{}
	for i, want := range []uint64{0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4, 0x06c45d188009454f} {
		if got := r.next(); got != want {
			t.Fatalf("output %d = %#x, want %#x", i, got, want)
		}
	}
}

func TestWeightStatistics(t *testing.T) {
	cases := []struct {
		name     string
		init     weightInit
		mean, sd float64
	}{
		{"conv scale", weightInit{std: 0.05, seed: 1}, 0, 0.05},
		{"unit", weightInit{std: 1, seed: 2}, 0, 1},
		{"gain", weightInit{value: 1}, 1, 0},
		{"shift", weightInit{}, 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			const n = 1 << 16
			vals := make([]float32, n)
			tc.init.fill(vals[:1000], 0) // two pieces: the stream continues
			tc.init.fill(vals[1000:], 1000)
			var sum, sq float64
			for _, v := range vals {
				sum += float64(v)
				sq += float64(v) * float64(v)
				if math.Abs(float64(v)-tc.mean) > 3.5*tc.sd+1e-6 {
					t.Fatalf("value %v outside mean±3.5sd", v)
				}
			}
			mean := sum / n
			sd := math.Sqrt(max(sq/n-mean*mean, 0))
			if math.Abs(mean-tc.mean) > 0.02*tc.sd+1e-6 {
				t.Errorf("mean %v, want %v", mean, tc.mean)
			}
			if math.Abs(sd-tc.sd) > 0.02*tc.sd+1e-6 {
				t.Errorf("sd %v, want %v", sd, tc.sd)
			}
		})
	}
}
