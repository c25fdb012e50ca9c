package sd

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// The Go binding cannot build a rank-0 float16 tensor, and fp16 exports from
// optimum >= 1.24 declare the UNet's timestep exactly so. Rather than drop the
// variant we rewrite the graph in memory: the input becomes a float32 scalar
// under a new name and a Cast node turns it back into the float16 "timestep"
// the rest of the graph reads. Timesteps are integers <= 1000, exact in fp16,
// so the graph computes what it would with the original input.

// ONNX protobuf field numbers used below (onnx.proto).
const (
	modelGraph      = 7
	graphNode       = 1
	graphInput      = 11
	valueInfoName   = 1
	valueInfoType   = 2
	typeTensor      = 1
	tensorElemType  = 1
	tensorShape     = 2
	nodeInput       = 1
	nodeOutput      = 2
	nodeName        = 3
	nodeOpType      = 4
	nodeAttribute   = 5
	attrName        = 1
	attrInt         = 3
	attrType        = 20
	attrTypeInt     = 2
	onnxFloat       = 1
	onnxFloat16     = 10
	scalarInputName = "sdgate_timestep_f32"
)

// castScalarInputToFloat returns model with graph input `input` replaced by a
// float32 scalar named scalarInputName and a Cast to float16 feeding it.
func castScalarInputToFloat(model []byte, input string) ([]byte, error) {
	out := make([]byte, 0, len(model)+256)
	found := false
	err := eachField(model, func(num protowire.Number, typ protowire.Type, raw, value []byte) error {
		if num != modelGraph || typ != protowire.BytesType {
			out = append(out, raw...)
			return nil
		}
		graph, ok, err := rewriteGraph(value, input)
		if err != nil {
			return err
		}
		found = found || ok
		out = protowire.AppendTag(out, modelGraph, protowire.BytesType)
		out = protowire.AppendBytes(out, graph)
		return nil
	})
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, fmt.Errorf("graph has no input %q", input)
	}
	return out, nil
}

func rewriteGraph(graph []byte, input string) ([]byte, bool, error) {
	out := make([]byte, 0, len(graph)+256)
	// The Cast goes first so the node list stays topologically sorted.
	out = protowire.AppendTag(out, graphNode, protowire.BytesType)
	out = protowire.AppendBytes(out, castNode(scalarInputName, input))
	found := false
	err := eachField(graph, func(num protowire.Number, typ protowire.Type, raw, value []byte) error {
		if num == graphInput && typ == protowire.BytesType && valueInfoNamed(value) == input {
			found = true
			out = protowire.AppendTag(out, graphInput, protowire.BytesType)
			out = protowire.AppendBytes(out, scalarValueInfo(scalarInputName, onnxFloat))
			return nil
		}
		out = append(out, raw...)
		return nil
	})
	return out, found, err
}

// eachField walks the top-level fields of a protobuf message, handing each
// one's raw bytes (tag included) and, for length-delimited fields, its value.
func eachField(msg []byte, fn func(num protowire.Number, typ protowire.Type, raw, value []byte) error) error {
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return fmt.Errorf("malformed onnx protobuf: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return fmt.Errorf("malformed onnx protobuf: %w", protowire.ParseError(m))
		}
		var value []byte
		if typ == protowire.BytesType {
			value, _ = protowire.ConsumeBytes(msg[n:])
		}
		if err := fn(num, typ, msg[:n+m], value); err != nil {
			return err
		}
		msg = msg[n+m:]
	}
	return nil
}

// valueInfoNamed is the name of a ValueInfoProto, "" when it has none or
// cannot be parsed (the caller then matches nothing).
func valueInfoNamed(vi []byte) string {
	name := ""
	if err := eachField(vi, func(num protowire.Number, typ protowire.Type, _, value []byte) error {
		if num == valueInfoName && typ == protowire.BytesType {
			name = string(value)
		}
		return nil
	}); err != nil {
		return ""
	}
	return name
}

// scalarValueInfo is a ValueInfoProto for a rank-0 tensor (a shape with no dims).
func scalarValueInfo(name string, elemType int) []byte {
	var tensor []byte
	tensor = protowire.AppendTag(tensor, tensorElemType, protowire.VarintType)
	tensor = protowire.AppendVarint(tensor, uint64(elemType))
	tensor = protowire.AppendTag(tensor, tensorShape, protowire.BytesType)
	tensor = protowire.AppendBytes(tensor, nil)
	var typ []byte
	typ = protowire.AppendTag(typ, typeTensor, protowire.BytesType)
	typ = protowire.AppendBytes(typ, tensor)
	var vi []byte
	vi = protowire.AppendTag(vi, valueInfoName, protowire.BytesType)
	vi = protowire.AppendString(vi, name)
	vi = protowire.AppendTag(vi, valueInfoType, protowire.BytesType)
	vi = protowire.AppendBytes(vi, typ)
	return vi
}

func castNode(from, to string) []byte {
	var attr []byte
	attr = protowire.AppendTag(attr, attrName, protowire.BytesType)
	attr = protowire.AppendString(attr, "to")
	attr = protowire.AppendTag(attr, attrInt, protowire.VarintType)
	attr = protowire.AppendVarint(attr, onnxFloat16)
	attr = protowire.AppendTag(attr, attrType, protowire.VarintType)
	attr = protowire.AppendVarint(attr, attrTypeInt)
	var node []byte
	node = protowire.AppendTag(node, nodeInput, protowire.BytesType)
	node = protowire.AppendString(node, from)
	node = protowire.AppendTag(node, nodeOutput, protowire.BytesType)
	node = protowire.AppendString(node, to)
	node = protowire.AppendTag(node, nodeName, protowire.BytesType)
	node = protowire.AppendString(node, "sdgate_timestep_cast")
	node = protowire.AppendTag(node, nodeOpType, protowire.BytesType)
	node = protowire.AppendString(node, "Cast")
	node = protowire.AppendTag(node, nodeAttribute, protowire.BytesType)
	node = protowire.AppendBytes(node, attr)
	return node
}
