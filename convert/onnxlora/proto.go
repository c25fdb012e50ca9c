package onnxlora

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"

	"github.com/sdgate/sdgate/sd/half"
)

// ONNX protobuf field numbers (onnx.proto) this package reads or writes.
const (
	modelGraph = 7

	graphNode        = 1
	graphInitializer = 5

	nodeInput  = 1
	nodeName   = 3
	nodeOpType = 4
	nodeDomain = 7

	tensorDims         = 1
	tensorDataType     = 2
	tensorFloatData    = 4
	tensorInt32Data    = 5
	tensorName         = 8
	tensorRawData      = 9
	tensorExternalData = 13
	tensorDataLocation = 14

	entryKey   = 1
	entryValue = 2

	dataFloat   = 1
	dataFloat16 = 10

	locationExternal = 1
)

var errWire = errors.New("malformed protobuf")

// field is one top-level field of a message: its number, wire type, the
// whole encoding (tag included) and, for bytes fields, the payload.
type field struct {
	num    protowire.Number
	typ    protowire.Type
	raw    []byte
	value  []byte // bytes fields only
	varint uint64 // varint fields only
}

// fields splits msg into its top-level fields.
func fields(msg []byte) ([]field, error) {
	var out []field
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return nil, fmt.Errorf("%w: %v", errWire, protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return nil, fmt.Errorf("%w: field %d: %v", errWire, num, protowire.ParseError(m))
		}
		f := field{num: num, typ: typ, raw: msg[:n+m]}
		switch typ {
		case protowire.BytesType:
			f.value, _ = protowire.ConsumeBytes(msg[n:])
		case protowire.VarintType:
			f.varint, _ = protowire.ConsumeVarint(msg[n:])
		}
		out = append(out, f)
		msg = msg[n+m:]
	}
	return out, nil
}

// node is the part of a NodeProto that says which weights it consumes.
type node struct {
	name, op, domain string
	inputs           []string
}

func parseNode(msg []byte) (node, error) {
	fs, err := fields(msg)
	if err != nil {
		return node{}, err
	}
	var n node
	for _, f := range fs {
		if f.typ != protowire.BytesType {
			continue
		}
		switch f.num {
		case nodeInput:
			n.inputs = append(n.inputs, string(f.value))
		case nodeName:
			n.name = string(f.value)
		case nodeOpType:
			n.op = string(f.value)
		case nodeDomain:
			n.domain = string(f.value)
		}
	}
	return n, nil
}

// tensor is a TensorProto: where its data is, not the data itself.
type tensor struct {
	name     string
	dims     []int64
	dataType uint64
	raw      []byte  // raw_data
	data     []field // float_data, int32_data (float16 bits when not raw)
	external map[string]string
	hasData  bool // raw_data, float_data or int32_data present
}

func parseTensor(msg []byte) (*tensor, error) {
	fs, err := fields(msg)
	if err != nil {
		return nil, err
	}
	t := &tensor{}
	for _, f := range fs {
		switch {
		case f.num == tensorDims && f.typ == protowire.VarintType:
			t.dims = append(t.dims, int64(f.varint))
		case f.num == tensorDims && f.typ == protowire.BytesType:
			for b := f.value; len(b) > 0; {
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return nil, fmt.Errorf("%w: dims", errWire)
				}
				t.dims = append(t.dims, int64(v))
				b = b[n:]
			}
		case f.num == tensorDataType && f.typ == protowire.VarintType:
			t.dataType = f.varint
		case f.num == tensorName && f.typ == protowire.BytesType:
			t.name = string(f.value)
		case f.num == tensorRawData && f.typ == protowire.BytesType:
			t.raw, t.hasData = f.value, true
		case f.num == tensorFloatData || f.num == tensorInt32Data:
			// Decoded only when the tensor is merged (values).
			t.data, t.hasData = append(t.data, f), true
		case f.num == tensorExternalData && f.typ == protowire.BytesType:
			k, v, err := parseEntry(f.value)
			if err != nil {
				return nil, err
			}
			if t.external == nil {
				t.external = map[string]string{}
			}
			t.external[k] = v
		case f.num == tensorDataLocation && f.typ == protowire.VarintType:
			if f.varint == locationExternal && t.external == nil {
				t.external = map[string]string{}
			}
		}
	}
	return t, nil
}

func parseEntry(msg []byte) (key, value string, err error) {
	fs, err := fields(msg)
	if err != nil {
		return "", "", err
	}
	for _, f := range fs {
		if f.typ == protowire.BytesType && f.num == entryKey {
			key = string(f.value)
		} else if f.typ == protowire.BytesType && f.num == entryValue {
			value = string(f.value)
		}
	}
	return key, value, nil
}

// tensorSize is the encoded size of encodeTensor's message.
func tensorSize(name string, dims []int64, dataType uint64) int {
	n := 0
	for _, d := range dims {
		n += protowire.SizeTag(tensorDims) + protowire.SizeVarint(uint64(d))
	}
	n += protowire.SizeTag(tensorDataType) + protowire.SizeVarint(dataType)
	n += protowire.SizeTag(tensorName) + protowire.SizeBytes(len(name))
	size := int64(4)
	if dataType == dataFloat16 {
		size = 2
	}
	return n + protowire.SizeTag(tensorRawData) + protowire.SizeBytes(int(numel(dims)*size))
}

// encodeTensor writes a TensorProto holding data inline as raw_data.
func encodeTensor(name string, dims []int64, dataType uint64, raw []byte) []byte {
	var b []byte
	for _, d := range dims {
		b = protowire.AppendTag(b, tensorDims, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(d))
	}
	b = protowire.AppendTag(b, tensorDataType, protowire.VarintType)
	b = protowire.AppendVarint(b, dataType)
	b = protowire.AppendTag(b, tensorName, protowire.BytesType)
	b = protowire.AppendString(b, name)
	b = protowire.AppendTag(b, tensorRawData, protowire.BytesType)
	return protowire.AppendBytes(b, raw)
}

// typedValues decodes float_data (float tensors) or int32_data (float16
// bits), packed or not.
func (t *tensor) typedValues() ([]float32, error) {
	var out []float32
	for _, f := range t.data {
		switch {
		case t.dataType == dataFloat && f.num == tensorFloatData && f.typ == protowire.BytesType:
			if len(f.value)%4 != 0 {
				return nil, fmt.Errorf("%w: float_data of %d bytes", errWire, len(f.value))
			}
			for b := f.value; len(b) > 0; b = b[4:] {
				v, _ := protowire.ConsumeFixed32(b)
				out = append(out, float32frombits(v))
			}
		case t.dataType == dataFloat && f.num == tensorFloatData && f.typ == protowire.Fixed32Type:
			v, _ := protowire.ConsumeFixed32(f.raw[protowire.SizeTag(f.num):])
			out = append(out, float32frombits(v))
		case t.dataType == dataFloat16 && f.num == tensorInt32Data && f.typ == protowire.BytesType:
			for b := f.value; len(b) > 0; {
				v, n := protowire.ConsumeVarint(b)
				if n < 0 {
					return nil, fmt.Errorf("%w: int32_data", errWire)
				}
				out = append(out, half.Float16(v).Float32())
				b = b[n:]
			}
		case t.dataType == dataFloat16 && f.num == tensorInt32Data && f.typ == protowire.VarintType:
			out = append(out, half.Float16(f.varint).Float32())
		default:
			return nil, fmt.Errorf("%w: %q: data field %d does not fit data type %d", ErrModel, t.name, f.num, t.dataType)
		}
	}
	return out, nil
}
