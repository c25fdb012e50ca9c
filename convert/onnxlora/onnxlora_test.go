package onnxlora

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// initializers decodes every float initializer of model by name, in the
// graph's layout.
func initializers(t *testing.T, model []byte, dir string) map[string][]float32 {
	t.Helper()
	top, err := fields(model)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]float32{}
	for _, f := range top {
		if f.num != modelGraph {
			continue
		}
		graph, err := fields(f.value)
		if err != nil {
			t.Fatal(err)
		}
		for _, g := range graph {
			if g.num != graphInitializer {
				continue
			}
			tp, err := parseTensor(g.value)
			if err != nil {
				t.Fatal(err)
			}
			if tp.dataType != dataFloat && tp.dataType != dataFloat16 {
				continue
			}
			vals, err := tp.values(dir)
			if err != nil {
				t.Fatal(err)
			}
			out[tp.name] = vals
		}
	}
	return out
}

// adaptedSpecs are the weights the test LoRA adapts: linear layers (MatMul,
// transposed) and convolutions of both networks.
func adaptedSpecs(params []synth.Param) []lora.Spec {
	var specs []lora.Spec
	for _, p := range params {
		n := p.Name
		if (p.Net == "unet" && (strings.HasSuffix(n, "attn1.to_q.weight") || strings.HasSuffix(n, "attn2.to_v.weight") ||
			strings.HasSuffix(n, "proj_in.weight") || n == "down_blocks.0.resnets.0.conv1.weight" || n == "conv_in.weight")) ||
			(p.Net == "text_encoder" && (strings.HasSuffix(n, "self_attn.v_proj.weight") || strings.HasSuffix(n, "mlp.fc1.weight"))) {
			specs = append(specs, lora.Spec{Net: p.Net, Name: n, Shape: p.Shape})
		}
	}
	return specs
}

func kohya(t *testing.T, l *lora.LoRA) *lora.LoRA {
	t.Helper()
	var buf bytes.Buffer
	if err := lora.WriteKohya(&buf, l, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	return reparse(t, buf.Bytes())
}

// TestMergeMatchesTorchMerge: merging into the ONNX graphs synth wrote
// (MatMul weights transposed, inline and external data, fused attention) gives exactly the
// weights lora.Merge makes of the same parameters in torch's layout.
func TestMergeMatchesTorchMerge(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"inline":   {Preset: "tiny", Seed: 5},
		"external": {Preset: "tiny", Seed: 5, ExternalData: true},
		"fused":    {Preset: "tiny", Seed: 5, FusedAttention: true}, // q, k, v stay their own MatMuls
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if _, err := synth.Write(context.Background(), dir, opts, nil); err != nil {
				t.Fatal(err)
			}
			params, err := synth.Params(opts)
			if err != nil {
				t.Fatal(err)
			}
			l, err := lora.Synthesize(adaptedSpecs(params), 4, 2, 9)
			if err != nil {
				t.Fatal(err)
			}
			for _, format := range []struct {
				name string
				l    *lora.LoRA
			}{{"peft", l}, {"kohya", kohya(t, l)}} {
				checkMerge(t, format.name, dir, params, format.l)
			}
		})
	}
}

func checkMerge(t *testing.T, format, dir string, params []synth.Param, l *lora.LoRA) {
	var targets []*lora.Target
	for _, p := range params {
		if (p.Net == "unet" || p.Net == "text_encoder") && strings.HasSuffix(p.Name, ".weight") && len(p.Shape) >= 2 {
			vals, err := p.Values()
			if err != nil {
				t.Fatal(err)
			}
			targets = append(targets, &lora.Target{Net: p.Net, Name: p.Name, Shape: p.Shape, Data: vals})
		}
	}
	if _, err := lora.Merge(targets, true, lora.Scaled{LoRA: l, Scale: 0.7}); err != nil {
		t.Fatal(err)
	}
	adapted := map[string]bool{}
	for _, m := range l.Modules {
		adapted[m.Key] = true
	}
	want := map[string]*lora.Target{}
	for _, tg := range targets {
		mod := strings.TrimSuffix(tg.Name, ".weight")
		if adapted[map[string]string{"unet": "unet.", "text_encoder": "text_encoder."}[tg.Net]+mod] ||
			adapted[map[string]string{"unet": "lora_unet_", "text_encoder": "lora_te_"}[tg.Net]+strings.ReplaceAll(mod, ".", "_")] {
			want[tg.Net+"/"+tg.Name] = tg
		}
	}
	if len(want) != len(l.Modules) {
		t.Fatalf("%s: %d adapted weights for %d modules", format, len(want), len(l.Modules))
	}
	merged := 0
	for _, net := range []string{"unet", "text_encoder"} {
		netDir := filepath.Join(dir, net)
		model, err := os.ReadFile(filepath.Join(netDir, "model.onnx"))
		if err != nil {
			t.Fatal(err)
		}
		out, rep, err := Merge(model, netDir, net, true, lora.Scaled{LoRA: l, Scale: 0.7})
		if err != nil {
			t.Fatalf("%s %s: %v", format, net, err)
		}
		merged += rep.Merged
		base := initializers(t, model, netDir)
		got := initializers(t, out, netDir)
		for name, vals := range got {
			tg, ok := want[net+"/"+name]
			if !ok {
				if !slices.Equal(vals, base[name]) {
					t.Errorf("%s %s %s changed, no LoRA adapts it", format, net, name)
				}
				continue
			}
			exp := tg.Data
			if len(tg.Shape) == 2 { // linear layers are MatMuls: [in, out]
				exp = transpose(tg.Data, tg.Shape[0], tg.Shape[1])
			}
			if !slices.Equal(vals, exp) {
				t.Errorf("%s %s %s differs from lora.Merge's", format, net, name)
			}
		}
	}
	if merged != len(l.Modules) {
		t.Errorf("%s: %d modules merged, the LoRA has %d", format, merged, len(l.Modules))
	}
}

func transpose(a []float32, rows, cols int64) []float32 {
	out := make([]float32, len(a))
	for r := range rows {
		for c := range cols {
			out[c*rows+r] = a[r*cols+c]
		}
	}
	return out
}

func TestMergeUnmatchedAndUnchanged(t *testing.T) {
	dir := t.TempDir()
	opts := synth.Options{Preset: "tiny", Seed: 5}
	if _, err := synth.Write(context.Background(), dir, opts, nil); err != nil {
		t.Fatal(err)
	}
	netDir := filepath.Join(dir, "unet")
	model, err := os.ReadFile(filepath.Join(netDir, "model.onnx"))
	if err != nil {
		t.Fatal(err)
	}
	stray, err := lora.Synthesize([]lora.Spec{{Net: "unet", Name: "nowhere.to_q.weight", Shape: []int64{4, 4}}}, 2, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Merge(model, netDir, "unet", true, lora.Scaled{LoRA: stray, Scale: 1}); !errors.Is(err, lora.ErrUnmatched) {
		t.Errorf("strict: %v, want ErrUnmatched", err)
	}
	out, rep, err := Merge(model, netDir, "unet", false, lora.Scaled{LoRA: stray, Scale: 1})
	if err != nil || len(rep.Unmatched) != 1 || &out[0] != &model[0] {
		t.Errorf("lenient: %+v %v; want the model back unchanged and one unmatched", rep, err)
	}
	// A text-encoder module is not the UNet's business.
	te, _ := lora.Synthesize([]lora.Spec{{Net: "text_encoder", Name: "nowhere.q_proj.weight", Shape: []int64{4, 4}}}, 2, 2, 1)
	if _, rep, err := Merge(model, netDir, "unet", true, lora.Scaled{LoRA: te, Scale: 1}); err != nil || rep.Merged != 0 {
		t.Errorf("other network's module: %+v %v", rep, err)
	}
}

// TestExternalBounds: external data that points outside the folder or past
// its file is an error, never a read elsewhere or a panic.
func TestExternalBounds(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "w.bin"), make([]byte, 16), 0o644)
	for _, ext := range []map[string]string{
		{"location": "../w.bin"}, {"location": "/etc/passwd"}, {"location": ""},
		{"location": "w.bin", "offset": "12"}, {"location": "w.bin", "offset": "-1"},
		{"location": "w.bin", "length": "8"}, {"location": "missing.bin"},
	} {
		tp := &tensor{name: "x", dims: []int64{2, 2}, dataType: dataFloat, external: ext}
		if _, err := tp.values(dir); !errors.Is(err, ErrModel) {
			t.Errorf("%v: %v, want ErrModel", ext, err)
		}
	}
	tp := &tensor{name: "x", dims: []int64{2, 2}, dataType: dataFloat, external: map[string]string{"location": "w.bin", "length": "16"}}
	if vals, err := tp.values(dir); err != nil || len(vals) != 4 {
		t.Errorf("in range: %v %v", vals, err)
	}
}

// FuzzMerge: model bytes are a folder's files; none panics the rewriter.
func FuzzMerge(f *testing.F) {
	dir := f.TempDir()
	if _, err := synth.Write(context.Background(), dir, synth.Options{Preset: "tiny", Seed: 5}, nil); err != nil {
		f.Fatal(err)
	}
	model, err := os.ReadFile(filepath.Join(dir, "text_encoder", "model.onnx"))
	if err != nil {
		f.Fatal(err)
	}
	params, err := synth.Params(synth.Options{Preset: "tiny", Seed: 5})
	if err != nil {
		f.Fatal(err)
	}
	l, err := lora.Synthesize(adaptedSpecs(params), 2, 2, 3)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(model)
	f.Add(model[:len(model)/2])
	f.Add([]byte{0x3a, 0x05, 0x2a, 0x03, 0x08, 0xff, 0x01})
	f.Fuzz(func(t *testing.T, data []byte) {
		Merge(data, dir, "text_encoder", false, lora.Scaled{LoRA: l, Scale: 1})
	})
}
