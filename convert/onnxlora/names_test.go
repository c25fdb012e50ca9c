package onnxlora

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/models/synth"
)

// orderedInits are a graph's float initializers in graph order.
func orderedInits(t *testing.T, model []byte, dir string) (names []string, vals [][]float32) {
	t.Helper()
	top, err := fields(model)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range top {
		if f.num != modelGraph {
			continue
		}
		graph, _ := fields(f.value)
		for _, g := range graph {
			if g.num != graphInitializer {
				continue
			}
			tp, err := parseTensor(g.value)
			if err != nil {
				t.Fatal(err)
			}
			if tp.dataType == dataFloat || tp.dataType == dataFloat16 {
				v, err := tp.values(dir)
				if err != nil {
					t.Fatal(err)
				}
				names, vals = append(names, tp.name), append(vals, v)
			}
		}
	}
	return names, vals
}

func nodeNames(t *testing.T, model []byte) []string {
	t.Helper()
	top, _ := fields(model)
	var out []string
	for _, f := range top {
		if f.num == modelGraph {
			graph, _ := fields(f.value)
			for _, g := range graph {
				if g.num == graphNode {
					n, err := parseNode(g.value)
					if err != nil {
						t.Fatal(err)
					}
					out = append(out, n.name)
				}
			}
		}
	}
	return out
}

// TestMergeByNodeNames: with MatMul weights named onnx::MatMul_N, as
// optimum exports name them, the LoRA finds its layers through the node
// names (/down_blocks.0/.../to_q/MatMul) and merges exactly what it merges
// into the graph whose weights carry state-dict names.
func TestMergeByNodeNames(t *testing.T) {
	named, anon := t.TempDir(), t.TempDir()
	opts := synth.Options{Preset: "tiny", Seed: 4}
	if _, err := synth.Write(context.Background(), named, opts, nil); err != nil {
		t.Fatal(err)
	}
	opts.AnonymousMatMulWeights = true
	if _, err := synth.Write(context.Background(), anon, opts, nil); err != nil {
		t.Fatal(err)
	}
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	l, err := lora.Synthesize(adaptedSpecs(params), 3, 3, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, net := range []string{"unet", "text_encoder"} {
		read := func(root string) []byte {
			b, err := os.ReadFile(filepath.Join(root, net, "model.onnx"))
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
		nm, am := read(named), read(anon)
		wantNode := map[string]string{"unet": "/down_blocks.0/attentions.0/transformer_blocks.0/attn1/to_q/MatMul",
			"text_encoder": "/text_model/encoder/layers.0/self_attn/v_proj/MatMul"}[net]
		if !slices.Contains(nodeNames(t, am), wantNode) {
			t.Fatalf("%s: no node %s", net, wantNode)
		}
		gotN, rn, err := Merge(nm, filepath.Join(named, net), net, true, lora.Scaled{LoRA: kohya(t, l), Scale: 0.9})
		if err != nil {
			t.Fatal(err)
		}
		gotA, ra, err := Merge(am, filepath.Join(anon, net), net, true, lora.Scaled{LoRA: kohya(t, l), Scale: 0.9})
		if err != nil {
			t.Fatalf("%s by node names: %v", net, err)
		}
		if rn.Merged == 0 || ra.Merged != rn.Merged {
			t.Fatalf("%s: merged %d by weight names, %d by node names", net, rn.Merged, ra.Merged)
		}
		namesN, valsN := orderedInits(t, gotN, filepath.Join(named, net))
		namesA, valsA := orderedInits(t, gotA, filepath.Join(anon, net))
		anonymous := 0
		for i := range valsN {
			if !slices.Equal(valsN[i], valsA[i]) {
				t.Errorf("%s: %s / %s differ", net, namesN[i], namesA[i])
			}
			if strings.HasPrefix(namesA[i], "onnx::MatMul_") {
				anonymous++
			}
		}
		if anonymous == 0 || len(namesA) != len(namesN) {
			t.Errorf("%s: %d anonymous weights of %d", net, anonymous, len(namesA))
		}
	}
}
