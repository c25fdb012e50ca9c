// Package onnxlora merges LoRAs into the weights of an ONNX model as it
// loads: the model's bytes in, the same model with its adapted
// initializers rewritten out. Only the weights a LoRA adapts are decoded;
// the rest of the graph is copied through untouched, external data
// included (the rewritten tensors become inline).
//
// Weights are found the way both sdgate's graphs and optimum's exports
// name them: an initializer named like a state-dict weight
// ("down_blocks.0.resnets.0.conv1.weight"), or, for the MatMul weights
// exporters name onnx::MatMul_N, the diffusers module path in the
// consuming node's name ("/down_blocks.0/attentions.0/.../to_q/MatMul").
// The layout follows the consumer: a MatMul's B is [in, out] (torch's
// transposed), a Conv's weight torch's own [out, in, kh, kw].
package onnxlora

import (
	"errors"
	"fmt"
	"strings"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sdgate/sdgate/convert/lora"
)

// ErrModel: the ONNX model cannot be read or rewritten.
var ErrModel = errors.New("onnx model")

// Merge returns model, an ONNX ModelProto whose external data lies under
// dir, with the modules of loras for network net ("unet" or
// "text_encoder") merged into its weights. Modules for other networks are
// left for their own Merge. With strict, a module matching no weight is an
// error (lora.ErrUnmatched); otherwise it is listed in the report. When no
// weight changes, model itself comes back.
func Merge(model []byte, dir, net string, strict bool, loras ...lora.Scaled) ([]byte, lora.Report, error) {
	top, err := fields(model)
	if err != nil {
		return nil, lora.Report{}, fmt.Errorf("%w: %w", ErrModel, err)
	}
	gi := -1
	for i, f := range top {
		if f.num == modelGraph && f.typ == protowire.BytesType {
			if gi >= 0 {
				return nil, lora.Report{}, fmt.Errorf("%w: two graphs", ErrModel)
			}
			gi = i
		}
	}
	if gi < 0 {
		return nil, lora.Report{}, fmt.Errorf("%w: no graph", ErrModel)
	}
	graph, err := fields(top[gi].value)
	if err != nil {
		return nil, lora.Report{}, fmt.Errorf("%w: graph: %w", ErrModel, err)
	}
	w, err := findWeights(graph, net)
	if err != nil {
		return nil, lora.Report{}, err
	}
	plan, rep, err := lora.Resolve(w.targets, strict, forNet(net, loras)...)
	if err != nil {
		return nil, lora.Report{}, err
	}
	adapted := plan.Targets()
	if len(adapted) == 0 {
		return model, rep, nil
	}
	// The output is sized first and written once, one adapted tensor
	// decoded at a time: peak memory is the input, the output and a tensor.
	at := make(map[int]*lora.Target, len(adapted))
	graphLen := len(top[gi].value)
	for _, t := range adapted {
		i := w.field[t]
		at[i] = t
		tp := w.tensors[i]
		n := tensorSize(tp.name, tp.dims, tp.dataType)
		graphLen += protowire.SizeTag(graphInitializer) + protowire.SizeBytes(n) - len(graph[i].raw)
	}
	out := make([]byte, 0, len(model)-len(top[gi].raw)+protowire.SizeTag(modelGraph)+protowire.SizeBytes(graphLen))
	for i, f := range top {
		if i != gi {
			out = append(out, f.raw...)
			continue
		}
		out = protowire.AppendTag(out, modelGraph, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(graphLen))
		for j, g := range graph {
			t, ok := at[j]
			if !ok {
				out = append(out, g.raw...)
				continue
			}
			tp := w.tensors[j]
			vals, err := tp.values(dir)
			if err != nil {
				return nil, lora.Report{}, err
			}
			if err := plan.Apply(t, vals); err != nil {
				return nil, lora.Report{}, err
			}
			out = protowire.AppendTag(out, graphInitializer, protowire.BytesType)
			out = protowire.AppendBytes(out, encodeTensor(tp.name, tp.dims, tp.dataType, encodeRaw(vals, tp.dataType)))
		}
	}
	if len(out) != cap(out) {
		return nil, lora.Report{}, fmt.Errorf("%w: rewritten model is %d bytes, %d planned", ErrModel, len(out), cap(out))
	}
	return out, rep, nil
}

// forNet keeps the modules of loras that adapt net.
func forNet(net string, loras []lora.Scaled) []lora.Scaled {
	out := make([]lora.Scaled, 0, len(loras))
	for _, s := range loras {
		l := &lora.LoRA{Format: s.LoRA.Format}
		for _, m := range s.LoRA.Modules {
			if m.Net == net {
				l.Modules = append(l.Modules, m)
			}
		}
		out = append(out, lora.Scaled{LoRA: l, Scale: s.Scale})
	}
	return out
}

// weights are a graph's adaptable initializers as merge targets.
type weights struct {
	targets []*lora.Target
	field   map[*lora.Target]int // target -> index of its initializer field
	tensors map[int]*tensor
}

// consumer is how a weight is used: the node and the input it feeds.
type consumer struct {
	node  node
	input int
}

// findWeights lists the float initializers a MatMul (as B) or a Conv (as
// W) consumes, named by state-dict name.
func findWeights(graph []field, net string) (*weights, error) {
	uses := map[string]consumer{}
	for _, f := range graph {
		if f.num != graphNode || f.typ != protowire.BytesType {
			continue
		}
		n, err := parseNode(f.value)
		if err != nil {
			return nil, fmt.Errorf("%w: node: %w", ErrModel, err)
		}
		if n.domain != "" && n.domain != "ai.onnx" {
			continue
		}
		if (n.op == "MatMul" || n.op == "Conv") && len(n.inputs) > 1 {
			if _, seen := uses[n.inputs[1]]; !seen {
				uses[n.inputs[1]] = consumer{node: n, input: 1}
			}
		}
	}
	w := &weights{field: map[*lora.Target]int{}, tensors: map[int]*tensor{}}
	names := map[string]bool{}
	for i, f := range graph {
		if f.num != graphInitializer || f.typ != protowire.BytesType {
			continue
		}
		tp, err := parseTensor(f.value)
		if err != nil {
			return nil, fmt.Errorf("%w: initializer: %w", ErrModel, err)
		}
		use, ok := uses[tp.name]
		if !ok || (tp.dataType != dataFloat && tp.dataType != dataFloat16) || numel(tp.dims) < 0 {
			continue // not a weight of a layer, or dims no tensor can have
		}
		t := target(tp, use, net)
		if t == nil || names[t.Name] {
			continue // not a layer weight, or a second weight claiming one module
		}
		names[t.Name] = true
		w.targets = append(w.targets, t)
		w.field[t], w.tensors[i] = i, tp
	}
	return w, nil
}

// target names an initializer as a merge target, or nil when it is not a
// weight a LoRA could adapt.
func target(tp *tensor, use consumer, net string) *lora.Target {
	name := tp.name
	if !strings.HasSuffix(name, ".weight") {
		mod, ok := lora.NodeModule(use.node.name)
		if !ok {
			return nil
		}
		name = mod + ".weight"
	}
	switch {
	case use.node.op == "MatMul" && len(tp.dims) == 2:
		return &lora.Target{Net: net, Name: name, Shape: []int64{tp.dims[1], tp.dims[0]}, Transposed: true}
	case use.node.op == "Conv" && len(tp.dims) == 4:
		return &lora.Target{Net: net, Name: name, Shape: tp.dims}
	}
	return nil
}
