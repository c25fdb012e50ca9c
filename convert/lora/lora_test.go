package lora_test

import (
	"bytes"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// baseTargets are the tiny synth model's UNet and text-encoder weights
// (torch layout), each call a fresh copy.
func baseTargets(t testing.TB) []*lora.Target {
	t.Helper()
	params, err := synth.Params(synth.Options{Preset: "tiny", Seed: 2})
	if err != nil {
		t.Fatal(err)
	}
	var out []*lora.Target
	for _, p := range params {
		if (p.Net != "unet" && p.Net != "text_encoder") || !strings.HasSuffix(p.Name, ".weight") || len(p.Shape) < 2 {
			continue
		}
		vals, err := p.Values()
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, &lora.Target{Net: p.Net, Name: p.Name, Shape: p.Shape, Data: vals})
	}
	return out
}

// adapted picks what the test LoRA adapts: linear, 1x1 conv, 3x3 conv and
// text-encoder weights.
func adapted(targets []*lora.Target) []lora.Spec {
	var specs []lora.Spec
	for _, tg := range targets {
		n := tg.Name
		if strings.HasSuffix(n, "attn1.to_q.weight") || strings.HasSuffix(n, "attn2.to_k.weight") ||
			strings.HasSuffix(n, "proj_in.weight") || n == "down_blocks.0.resnets.0.conv1.weight" ||
			strings.HasSuffix(n, "self_attn.v_proj.weight") || strings.HasSuffix(n, "to_out.0.weight") {
			specs = append(specs, lora.Spec{Net: tg.Net, Name: n, Shape: tg.Shape})
		}
	}
	return specs
}

func encode(t testing.TB, l *lora.LoRA, kohya bool) *lora.LoRA {
	t.Helper()
	var buf bytes.Buffer
	write := lora.WritePeft
	if kohya {
		write = lora.WriteKohya
	}
	if err := write(&buf, l, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	f, err := safetensors.New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := lora.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return parsed
}

// expected merges the way the formula reads, with no code of the package.
func expected(base []*lora.Target, l *lora.LoRA, scale float32) map[string][]float32 {
	out := map[string][]float32{}
	for _, tg := range base {
		out[tg.Net+"/"+tg.Name] = slices.Clone(tg.Data)
	}
	for _, m := range l.Modules {
		name := m.Net + "/" + strings.TrimPrefix(strings.TrimPrefix(m.Key, "unet."), "text_encoder.") + ".weight"
		w := out[name]
		rank := m.DownShape[0]
		cols := int64(len(m.Down)) / rank
		s := float32(scale * m.Alpha / float32(rank))
		for o := range m.UpShape[0] {
			for i := range cols {
				var acc float32
				for r := range rank {
					acc += float32(m.Up[o*rank+r] * m.Down[r*cols+i])
				}
				w[o*cols+i] += float32(s * acc)
			}
		}
	}
	return out
}

func TestMergeExact(t *testing.T) {
	base := baseTargets(t)
	synthesized, err := lora.Synthesize(adapted(base), 4, 2, 7)
	if err != nil {
		t.Fatal(err)
	}
	peft := encode(t, synthesized, false)
	kohya := encode(t, synthesized, true)
	if peft.Format != lora.FormatPeft || kohya.Format != lora.FormatKohya || len(kohya.Modules) != len(adapted(base)) {
		t.Fatalf("formats %s %s, %d modules", peft.Format, kohya.Format, len(kohya.Modules))
	}
	want := expected(baseTargets(t), peft, 0.8)
	baseByName := map[string][]float32{}
	for _, tg := range base {
		baseByName[tg.Net+"/"+tg.Name] = tg.Data
	}

	for name, l := range map[string]*lora.LoRA{"peft": peft, "kohya": kohya} {
		t.Run(name, func(t *testing.T) {
			targets := baseTargets(t)
			rep, err := lora.Merge(targets, true, lora.Scaled{LoRA: l, Scale: 0.8})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Merged != len(l.Modules) {
				t.Errorf("merged %d of %d", rep.Merged, len(l.Modules))
			}
			changed := 0
			for _, tg := range targets {
				w := want[tg.Net+"/"+tg.Name]
				if !slices.Equal(tg.Data, w) {
					t.Errorf("%s differs from the test's own merge", tg.Name)
				}
				if !slices.Equal(tg.Data, baseByName[tg.Net+"/"+tg.Name]) {
					changed++
				}
			}
			if changed != len(l.Modules) {
				t.Errorf("%d weights changed, want %d", changed, len(l.Modules))
			}
		})
	}
}

// TestMergeTransposed: a MatMul-layout weight gets the transposed delta.
func TestMergeTransposed(t *testing.T) {
	base := baseTargets(t)
	l := encode(t, must(lora.Synthesize(adapted(base), 3, 3, 1)), true)
	plain := baseTargets(t)
	if _, err := lora.Merge(plain, true, lora.Scaled{LoRA: l, Scale: 1}); err != nil {
		t.Fatal(err)
	}
	trans := baseTargets(t)
	for _, tg := range trans {
		if len(tg.Shape) == 2 {
			tg.Data, tg.Transposed = transpose(tg.Data, tg.Shape[0], tg.Shape[1]), true
		}
	}
	if _, err := lora.Merge(trans, true, lora.Scaled{LoRA: l, Scale: 1}); err != nil {
		t.Fatal(err)
	}
	for i, tg := range trans {
		got := tg.Data
		if tg.Transposed {
			got = transpose(got, tg.Shape[1], tg.Shape[0])
		}
		if !slices.Equal(got, plain[i].Data) {
			t.Errorf("%s: transposed merge differs", tg.Name)
		}
	}
}

func TestScaleZeroAndStacking(t *testing.T) {
	base := baseTargets(t)
	a := encode(t, must(lora.Synthesize(adapted(base), 4, 4, 1)), true)
	b := encode(t, must(lora.Synthesize(adapted(base), 2, 1, 2)), false)

	zero := baseTargets(t)
	if _, err := lora.Merge(zero, true, lora.Scaled{LoRA: a, Scale: 0}); err != nil {
		t.Fatal(err)
	}
	both := baseTargets(t)
	if _, err := lora.Merge(both, true, lora.Scaled{LoRA: a, Scale: 0.5}, lora.Scaled{LoRA: b, Scale: -1}); err != nil {
		t.Fatal(err)
	}
	seq := baseTargets(t)
	lora.Merge(seq, true, lora.Scaled{LoRA: a, Scale: 0.5})
	lora.Merge(seq, true, lora.Scaled{LoRA: b, Scale: -1})
	for i := range base {
		if !slices.Equal(zero[i].Data, base[i].Data) {
			t.Errorf("%s: scale 0 changed the weight", base[i].Name)
		}
		if !slices.Equal(both[i].Data, seq[i].Data) {
			t.Errorf("%s: stacking in one call differs from two calls", base[i].Name)
		}
	}
}

func TestUnmatched(t *testing.T) {
	base := baseTargets(t)
	specs := append(adapted(base), lora.Spec{Net: "unet", Name: "down_blocks.9.attentions.0.proj_in.weight", Shape: []int64{32, 32, 1, 1}})
	l := encode(t, must(lora.Synthesize(specs, 2, 2, 3)), true)
	targets := baseTargets(t)
	_, err := lora.Merge(targets, true, lora.Scaled{LoRA: l, Scale: 1})
	if !errors.Is(err, lora.ErrUnmatched) || !strings.Contains(err.Error(), "lora_unet_down_blocks_9_attentions_0_proj_in") {
		t.Errorf("strict: %v", err)
	}
	for i := range base {
		if !slices.Equal(targets[i].Data, base[i].Data) {
			t.Fatalf("a failed strict merge changed %s", base[i].Name)
		}
	}
	rep, err := lora.Merge(targets, false, lora.Scaled{LoRA: l, Scale: 1})
	if err != nil || len(rep.Unmatched) != 1 || rep.Merged != len(specs)-1 {
		t.Errorf("lenient: %+v, %v", rep, err)
	}
	// A module of the wrong shape is an error in any mode.
	bad := encode(t, must(lora.Synthesize([]lora.Spec{{Net: "unet", Name: "conv_in.weight", Shape: []int64{32, 5, 3, 3}}}, 2, 2, 3)), false)
	if _, err := lora.Merge(baseTargets(t), false, lora.Scaled{LoRA: bad, Scale: 1}); !errors.Is(err, lora.ErrShape) {
		t.Errorf("wrong shape: %v", err)
	}
}

func TestParseRefuses(t *testing.T) {
	one := []float32{1, 2}
	entry := func(name string, shape ...int64) safetensors.Entry {
		return safetensors.Float32Entry(name, safetensors.F32, shape, make([]float32, prod(shape)))
	}
	for _, tc := range []struct {
		name    string
		entries []safetensors.Entry
		want    error
	}{
		{"loha", []safetensors.Entry{entry("lora_unet_conv_in.hada_w1_a", 2, 2)}, lora.ErrLyCORIS},
		{"lokr", []safetensors.Entry{entry("lora_unet_conv_in.lokr_w1", 2, 2)}, lora.ErrLyCORIS},
		{"tucker", []safetensors.Entry{entry("lora_unet_conv_in.lora_mid.weight", 2, 2, 3, 3)}, lora.ErrLyCORIS},
		{"third text encoder", []safetensors.Entry{entry("lora_te3_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", 2, 2)}, lora.ErrFormat},
		{"unknown key", []safetensors.Entry{entry("model.diffusion_model.conv_in.weight", 2, 2)}, lora.ErrFormat},
		{"no up", []safetensors.Entry{entry("lora_unet_conv_in.lora_down.weight", 2, 4)}, lora.ErrFormat},
		{"rank mismatch", []safetensors.Entry{entry("lora_unet_x.lora_down.weight", 2, 4), entry("lora_unet_x.lora_up.weight", 4, 3)}, lora.ErrShape},
		{"mixed", []safetensors.Entry{entry("lora_unet_x.lora_down.weight", 2, 4), entry("lora_unet_x.lora_up.weight", 4, 2),
			entry("unet.y.lora_A.weight", 2, 4), entry("unet.y.lora_B.weight", 4, 2)}, lora.ErrFormat},
		{"bad alpha", []safetensors.Entry{entry("lora_unet_x.lora_down.weight", 2, 4), entry("lora_unet_x.lora_up.weight", 4, 2),
			safetensors.Float32Entry("lora_unet_x.alpha", safetensors.F32, []int64{2}, one)}, lora.ErrFormat},
		{"empty", nil, lora.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := safetensors.Write(&buf, nil, tc.entries); err != nil {
				t.Fatal(err)
			}
			f, err := safetensors.New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := lora.Parse(f); !errors.Is(err, tc.want) {
				t.Errorf("err %v, want %v", err, tc.want)
			}
		})
	}
}

func TestAlphaDefaultsToRank(t *testing.T) {
	var buf bytes.Buffer
	safetensors.Write(&buf, nil, []safetensors.Entry{
		safetensors.Float32Entry("unet.a.processor.to_out_lora.down.weight", safetensors.F32, []int64{3, 2}, make([]float32, 6)),
		safetensors.Float32Entry("unet.a.processor.to_out_lora.up.weight", safetensors.F32, []int64{2, 3}, make([]float32, 6)),
	})
	f, _ := safetensors.New(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	l, err := lora.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	if l.Modules[0].Alpha != 3 {
		t.Errorf("alpha %v, want the rank 3", l.Modules[0].Alpha)
	}
	tg := &lora.Target{Net: "unet", Name: "a.to_out.0.weight", Shape: []int64{2, 2}, Data: make([]float32, 4)}
	if rep, err := lora.Merge([]*lora.Target{tg}, true, lora.Scaled{LoRA: l, Scale: 1}); err != nil || rep.Merged != 1 {
		t.Errorf("old diffusers processor names: %+v %v", rep, err)
	}
}

func TestNodeModule(t *testing.T) {
	for node, want := range map[string]string{
		"/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul": "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q",
		"/text_model/encoder/layers.0/self_attn/q_proj/MatMul":               "text_model.encoder.layers.0.self_attn.q_proj",
		"/conv_in/Conv": "conv_in",
	} {
		if got, ok := lora.NodeModule(node); !ok || got != want {
			t.Errorf("%s -> %q", node, got)
		}
	}
	for _, node := range []string{"MatMul_12", "/", ""} {
		if got, ok := lora.NodeModule(node); ok {
			t.Errorf("%q -> %q, want no module", node, got)
		}
	}
}

// FuzzParse: LoRA files are downloads; no input panics the parser.
func FuzzParse(f *testing.F) {
	var buf bytes.Buffer
	safetensors.Write(&buf, nil, []safetensors.Entry{
		safetensors.Float32Entry("lora_unet_x.lora_down.weight", safetensors.F16, []int64{1, 2}, []float32{1, 2}),
		safetensors.Float32Entry("lora_unet_x.lora_up.weight", safetensors.F16, []int64{2, 1}, []float32{3, 4}),
		safetensors.Float32Entry("lora_unet_x.alpha", safetensors.F16, nil, []float32{1}),
	})
	f.Add(buf.Bytes())
	buf.Reset()
	safetensors.Write(&buf, nil, []safetensors.Entry{ // kohya SDXL names
		safetensors.Float32Entry("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_down.weight", safetensors.F32, []int64{1, 2}, []float32{1, 2}),
		safetensors.Float32Entry("lora_te2_text_model_encoder_layers_0_mlp_fc1.lora_up.weight", safetensors.F32, []int64{2, 1}, []float32{3, 4}),
		safetensors.Float32Entry("lora_unet_input_blocks_4_1_proj_in.lora_down.weight", safetensors.F32, []int64{1, 2}, []float32{1, 2}),
		safetensors.Float32Entry("lora_unet_input_blocks_4_1_proj_in.lora_up.weight", safetensors.F32, []int64{2, 1}, []float32{3, 4}),
	})
	f.Add(buf.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		sf, err := safetensors.New(bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return
		}
		l, err := lora.Parse(sf)
		if err != nil {
			return
		}
		tg := &lora.Target{Net: "unet", Name: "x.weight", Shape: []int64{2, 2}, Data: make([]float32, 4)}
		lora.Merge([]*lora.Target{tg}, false, lora.Scaled{LoRA: l, Scale: 1}) // errors are fine, panics are not
	})
}

func must(l *lora.LoRA, err error) *lora.LoRA {
	if err != nil {
		panic(err)
	}
	return l
}

func prod(shape []int64) int64 {
	n := int64(1)
	for _, d := range shape {
		n *= d
	}
	return n
}

func transpose(m []float32, rows, cols int64) []float32 {
	out := make([]float32, len(m))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = m[r*cols+c]
		}
	}
	return out
}

// TestMergeLargeExact: layers big enough to be split among goroutines
// merge exactly as the formula reads, in both layouts.
func TestMergeLargeExact(t *testing.T) {
	spec := lora.Spec{Net: "unet", Name: "mid_block.attentions.0.proj_out.weight", Shape: []int64{640, 384}}
	l := must(lora.Synthesize([]lora.Spec{spec}, 8, 4, 3))
	data := make([]float32, 640*384)
	for i := range data {
		data[i] = float32(i%17) * 0.01
	}
	plain := &lora.Target{Net: "unet", Name: spec.Name, Shape: spec.Shape, Data: slices.Clone(data)}
	want := expected([]*lora.Target{plain}, l, 0.5)["unet/"+spec.Name]
	if _, err := lora.Merge([]*lora.Target{plain}, true, lora.Scaled{LoRA: l, Scale: 0.5}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(plain.Data, want) {
		t.Error("torch layout differs from the formula")
	}
	trans := &lora.Target{Net: "unet", Name: spec.Name, Shape: spec.Shape, Data: transpose(data, 640, 384), Transposed: true}
	if _, err := lora.Merge([]*lora.Target{trans}, true, lora.Scaled{LoRA: l, Scale: 0.5}); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(transpose(trans.Data, 384, 640), want) {
		t.Error("MatMul layout differs from the formula")
	}
}
