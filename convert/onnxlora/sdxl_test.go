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

var xlNets = []string{"text_encoder", "text_encoder_2", "unet"}

// xlSpecs are the weights the SDXL test LoRA adapts in all three networks:
// attention and MLP MatMuls, the added-conditioning MLP, ResNet,
// resampler and input convolutions.
func xlSpecs(params []synth.Param) []lora.Spec {
	var specs []lora.Spec
	for _, p := range params {
		n := p.Name
		unet := p.Net == "unet" && (strings.HasSuffix(n, "attn1.to_q.weight") || strings.HasSuffix(n, "attn2.to_v.weight") ||
			strings.HasSuffix(n, "proj_in.weight") || strings.HasSuffix(n, "ff.net.2.weight") || strings.HasSuffix(n, "resnets.0.conv1.weight") ||
			strings.HasSuffix(n, "conv_shortcut.weight") || strings.HasSuffix(n, "samplers.0.conv.weight") ||
			n == "conv_in.weight" || n == "add_embedding.linear_1.weight" || n == "mid_block.resnets.1.time_emb_proj.weight")
		te := (p.Net == "text_encoder" || p.Net == "text_encoder_2") &&
			(strings.HasSuffix(n, "self_attn.v_proj.weight") || strings.HasSuffix(n, "mlp.fc1.weight"))
		if unet || te {
			specs = append(specs, lora.Spec{Net: p.Net, Name: n, Shape: p.Shape})
		}
	}
	return specs
}

// unetModules are every module path of the UNet, for kohya's LDM names.
func unetModules(params []synth.Param) []string {
	var mods []string
	for _, p := range params {
		if m, ok := strings.CutSuffix(p.Name, ".weight"); ok && p.Net == "unet" {
			mods = append(mods, m)
		}
	}
	return mods
}

func reparse(t *testing.T, data []byte) *lora.LoRA {
	t.Helper()
	f, err := safetensors.New(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	l, err := lora.Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// expectMerged is W + scale*(alpha/rank)*up@down computed here, in torch's
// layout, with the rounding lora's merge promises: each product rounded,
// rank terms summed in order, the sum scaled once.
func expectMerged(base []float32, m *lora.Module, scale float32) []float32 {
	out := slices.Clone(base)
	s := float32(scale * m.Alpha / float32(m.Rank()))
	rank, rows := m.Rank(), m.UpShape[0]
	cols := int64(len(m.Down)) / rank
	for o := range rows {
		for i := range cols {
			var acc float32
			for r := range rank {
				acc += float32(m.Up[o*rank+r] * m.Down[r*cols+i])
			}
			out[o*cols+i] += float32(s * acc)
		}
	}
	return out
}

// TestMergeSDXL: on the sdxl-tiny graphs, a LoRA's peft form (unet.,
// text_encoder., text_encoder_2.) and its kohya SDXL form (LDM UNet names,
// lora_te1_/lora_te2_) rewrite the three networks to the same bytes, whose
// adapted weights are exactly what this test computes and whose other
// weights are untouched; at scale 0 every weight is the base's.
func TestMergeSDXL(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"plain": {Preset: "sdxl-tiny", Seed: 5},
		"fused": {Preset: "sdxl-tiny", Seed: 5, FusedAttention: true, AnonymousMatMulWeights: true},
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
			peft, err := lora.Synthesize(xlSpecs(params), 3, 2, 11)
			if err != nil {
				t.Fatal(err)
			}
			var buf bytes.Buffer
			if err := lora.WriteKohyaSDXL(&buf, peft, safetensors.F32, unetModules(params)); err != nil {
				t.Fatal(err)
			}
			for _, want := range []string{"lora_unet_input_blocks_", "lora_unet_output_blocks_", "lora_unet_middle_block_", "lora_unet_label_emb_0_0.", "lora_te1_text_model_", "lora_te2_text_model_"} {
				if !bytes.Contains(buf.Bytes(), []byte(want)) {
					t.Errorf("kohya SDXL file has no %s keys", want)
				}
			}
			if bytes.Contains(buf.Bytes(), []byte("lora_unet_down_blocks")) {
				t.Error("kohya SDXL file names the UNet in diffusers paths")
			}
			kohya := reparse(t, buf.Bytes())
			if len(kohya.Modules) != len(peft.Modules) || kohya.Format != lora.FormatKohya {
				t.Fatalf("kohya file: %d modules (%s), want %d", len(kohya.Modules), kohya.Format, len(peft.Modules))
			}
			byName := map[string]*lora.Module{}
			for i, s := range xlSpecs(params) {
				byName[s.Net+"/"+strings.TrimSuffix(s.Name, ".weight")] = peft.Modules[i]
			}
			torch := map[string][]float32{}
			for _, p := range params {
				vals, err := p.Values()
				if err != nil {
					t.Fatal(err)
				}
				torch[p.Net+"/"+p.Name] = vals
			}
			merged := 0
			for _, net := range xlNets {
				netDir := filepath.Join(dir, net)
				model, err := os.ReadFile(filepath.Join(netDir, "model.onnx"))
				if err != nil {
					t.Fatal(err)
				}
				outP, rep, err := Merge(model, netDir, net, true, lora.Scaled{LoRA: peft, Scale: 0.7})
				if err != nil {
					t.Fatalf("peft %s: %v", net, err)
				}
				merged += rep.Merged
				outK, _, err := Merge(model, netDir, net, true, lora.Scaled{LoRA: kohya, Scale: 0.7})
				if err != nil {
					t.Fatalf("kohya %s: %v", net, err)
				}
				if !bytes.Equal(outP, outK) {
					t.Errorf("%s: kohya SDXL and peft files of one LoRA merge differently", net)
				}
				checkXLWeights(t, net, netDir, model, outP, params, byName, torch)
				zero, _, err := Merge(model, netDir, net, true, lora.Scaled{LoRA: kohya, Scale: 0})
				if err != nil {
					t.Fatal(err)
				}
				base, got := initializers(t, model, netDir), initializers(t, zero, netDir)
				for name, vals := range got {
					if !slices.Equal(vals, base[name]) {
						t.Errorf("%s %s: scale 0 changed it", net, name)
					}
				}
			}
			if merged != len(peft.Modules) {
				t.Errorf("%d modules merged, the LoRA has %d", merged, len(peft.Modules))
			}
		})
	}
}

// checkXLWeights compares out's initializers with model's: the adapted
// ones (found by the graph's own names) with expectMerged, the rest equal.
func checkXLWeights(t *testing.T, net, netDir string, model, out []byte, params []synth.Param, byName map[string]*lora.Module, torch map[string][]float32) {
	t.Helper()
	w, err := graphWeights(model, net)
	if err != nil {
		t.Fatal(err)
	}
	base, got := initializers(t, model, netDir), initializers(t, out, netDir)
	adapted := 0
	for init, tg := range w {
		m := byName[net+"/"+strings.TrimSuffix(tg.Name, ".weight")]
		if m == nil {
			continue
		}
		adapted++
		exp := expectMerged(torch[net+"/"+tg.Name], m, 0.7)
		if tg.Transposed {
			exp = transpose(exp, tg.Shape[0], tg.Shape[1])
		}
		if !slices.Equal(got[init], exp) {
			t.Errorf("%s %s (%s): merged weight is not W + s·up·down", net, tg.Name, init)
		}
		delete(got, init)
	}
	for name, vals := range got {
		if !slices.Equal(vals, base[name]) {
			t.Errorf("%s %s changed, no LoRA adapts it", net, name)
		}
	}
	want := 0
	for k := range byName {
		if strings.HasPrefix(k, net+"/") {
			want++
		}
	}
	if adapted != want {
		t.Errorf("%s: %d adapted weights found in the graph, the LoRA adapts %d", net, adapted, want)
	}
}

// graphWeights are model's merge targets by initializer name.
func graphWeights(model []byte, net string) (map[string]*lora.Target, error) {
	top, err := fields(model)
	if err != nil {
		return nil, err
	}
	for _, f := range top {
		if f.num != modelGraph {
			continue
		}
		graph, err := fields(f.value)
		if err != nil {
			return nil, err
		}
		w, err := findWeights(graph, net)
		if err != nil {
			return nil, err
		}
		out := map[string]*lora.Target{}
		for _, tg := range w.targets {
			out[w.tensors[w.field[tg]].name] = tg
		}
		return out, nil
	}
	return nil, errors.New("no graph")
}

// TestRewriterSDXLLoRAOnSD1: an SDXL LoRA's second-text-encoder modules
// on a folder without one are unmatched (an error when strict), not
// silently dropped.
func TestRewriterSDXLLoRAOnSD1(t *testing.T) {
	dir := t.TempDir()
	if _, err := synth.Write(context.Background(), dir, synth.Options{Preset: "tiny", Seed: 5}, nil); err != nil {
		t.Fatal(err)
	}
	l, err := lora.Synthesize([]lora.Spec{{Net: "text_encoder_2", Name: "text_model.encoder.layers.0.mlp.fc1.weight", Shape: []int64{4, 4}}}, 2, 2, 1)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "xl.safetensors")
	var buf bytes.Buffer
	if err := lora.WritePeft(&buf, l, safetensors.F32); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(path, buf.Bytes(), 0o644)
	for _, strict := range []bool{true, false} {
		rw := Rewriter([]File{{Name: "xl", Path: path, Scale: 1}}, strict, nil)
		for _, net := range []string{"text_encoder", "unet"} {
			p := filepath.Join(dir, net, "model.onnx")
			model, _ := os.ReadFile(p)
			_, err := rw(net, p, model)
			switch {
			case net == "unet" && strict && !errors.Is(err, lora.ErrUnmatched):
				t.Errorf("strict: %v, want ErrUnmatched", err)
			case (net != "unet" || !strict) && err != nil:
				t.Errorf("%s strict=%v: %v", net, strict, err)
			}
		}
	}
}
