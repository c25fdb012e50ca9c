package synth

import (
	"context"
	"errors"
	"math"
)

// The subset of onnx.proto (IR version 8) that our graphs need, encoded by
// hand. Field numbers are onnx.proto's. Repeated scalars are written
// unpacked, the canonical proto2 form onnx.proto declares.

// errEncoding reports a bug in this package's encoder, never bad input.
var errEncoding = errors.New("onnx encoding")

const (
	irVersion      = 8
	opsetVersion   = 17
	producerName   = "sdgate-synth"
	protobufLimit  = math.MaxInt32 // protobuf refuses messages of 2 GiB and more
	externalSuffix = "_data"       // model.onnx -> model.onnx_data
)

// dataType is TensorProto.DataType.
type dataType int32

const (
	dtFloat   dataType = 1
	dtInt32   dataType = 6
	dtInt64   dataType = 7
	dtFloat16 dataType = 10
)

func (d dataType) elemSize() int64 {
	switch d {
	case dtFloat16:
		return 2
	case dtInt64:
		return 8
	default: // float32, int32
		return 4
	}
}

// ModelProto
type model struct {
	doc   string
	graph *graph
}

func (m *model) size() int64 {
	n := sizeVarintField(1, irVersion) +
		sizeBytesField(2, int64(len(producerName))) +
		sizeBytesField(6, int64(len(m.doc))) +
		sizeMessageField(7, m.graph)
	for _, o := range m.opsets() {
		n += sizeMessageField(8, o)
	}
	return n
}

func (m *model) emit(ctx context.Context, ww *wireWriter) {
	ww.varintField(1, irVersion)
	ww.stringField(2, producerName)
	ww.stringField(6, m.doc)
	ww.messageField(ctx, 7, m.graph)
	for _, o := range m.opsets() {
		ww.messageField(ctx, 8, o)
	}
}

// msDomain is ONNX Runtime's contrib-op domain (MultiHeadAttention).
const msDomain = "com.microsoft"

// opsets are the default domain's opset, and com.microsoft's when a node
// of the graph is in it.
func (m *model) opsets() []opsetImport {
	out := []opsetImport{{version: opsetVersion}}
	for _, nd := range m.graph.nodes {
		if nd.domain == msDomain {
			return append(out, opsetImport{domain: msDomain, version: 1})
		}
	}
	return out
}

// OperatorSetIdProto; the default domain (ai.onnx) is named "".
type opsetImport struct {
	domain  string
	version int64
}

func (o opsetImport) size() int64 {
	n := sizeVarintField(2, uint64(o.version))
	if o.domain != "" {
		n += sizeBytesField(1, int64(len(o.domain)))
	}
	return n
}

func (o opsetImport) emit(_ context.Context, ww *wireWriter) {
	if o.domain != "" {
		ww.stringField(1, o.domain)
	}
	ww.varintField(2, uint64(o.version))
}

// GraphProto
type graph struct {
	name     string
	nodes    []*node
	inits    []*tensor
	inputs   []*valueInfo
	outputs  []*valueInfo
	nameUsed map[string]bool // every value and initializer name, to keep them unique
}

func (g *graph) size() int64 {
	n := sizeBytesField(2, int64(len(g.name)))
	for _, nd := range g.nodes {
		n += sizeMessageField(1, nd)
	}
	for _, t := range g.inits {
		n += sizeMessageField(5, t)
	}
	for _, v := range g.inputs {
		n += sizeMessageField(11, v)
	}
	for _, v := range g.outputs {
		n += sizeMessageField(12, v)
	}
	return n
}

func (g *graph) emit(ctx context.Context, ww *wireWriter) {
	for _, nd := range g.nodes {
		ww.messageField(ctx, 1, nd)
	}
	ww.stringField(2, g.name)
	// Initializers carry the weights: the only slow part, so the only place
	// that looks at ctx.
	for _, t := range g.inits {
		if err := ctx.Err(); err != nil {
			ww.fail(err)
			return
		}
		ww.messageField(ctx, 5, t)
	}
	for _, v := range g.inputs {
		ww.messageField(ctx, 11, v)
	}
	for _, v := range g.outputs {
		ww.messageField(ctx, 12, v)
	}
}

// NodeProto
type node struct {
	name    string
	op      string
	domain  string // "" is ai.onnx
	inputs  []string
	outputs []string
	attrs   []*attribute
}

func (nd *node) size() int64 {
	var n int64
	for _, s := range nd.inputs {
		n += sizeBytesField(1, int64(len(s)))
	}
	for _, s := range nd.outputs {
		n += sizeBytesField(2, int64(len(s)))
	}
	n += sizeBytesField(3, int64(len(nd.name)))
	n += sizeBytesField(4, int64(len(nd.op)))
	for _, a := range nd.attrs {
		n += sizeMessageField(5, a)
	}
	if nd.domain != "" {
		n += sizeBytesField(7, int64(len(nd.domain)))
	}
	return n
}

func (nd *node) emit(ctx context.Context, ww *wireWriter) {
	for _, s := range nd.inputs {
		ww.stringField(1, s)
	}
	for _, s := range nd.outputs {
		ww.stringField(2, s)
	}
	ww.stringField(3, nd.name)
	ww.stringField(4, nd.op)
	for _, a := range nd.attrs {
		ww.messageField(ctx, 5, a)
	}
	if nd.domain != "" {
		ww.stringField(7, nd.domain)
	}
}

// attrKind is AttributeProto.AttributeType.
type attrKind int32

const (
	attrFloat  attrKind = 1
	attrInt    attrKind = 2
	attrString attrKind = 3
	attrInts   attrKind = 7
)

// AttributeProto, restricted to the kinds our nodes use.
type attribute struct {
	name string
	kind attrKind
	f    float32
	i    int64
	s    string
	ints []int64
}

func attrF(name string, f float32) *attribute { return &attribute{name: name, kind: attrFloat, f: f} }
func attrI(name string, i int64) *attribute   { return &attribute{name: name, kind: attrInt, i: i} }
func attrS(name, s string) *attribute         { return &attribute{name: name, kind: attrString, s: s} }
func attrIs(name string, ints ...int64) *attribute {
	return &attribute{name: name, kind: attrInts, ints: ints}
}

func (a *attribute) size() int64 {
	n := sizeBytesField(1, int64(len(a.name))) + sizeVarintField(20, uint64(a.kind))
	switch a.kind {
	case attrFloat:
		n += sizeFloat32Field(2)
	case attrInt:
		n += sizeVarintField(3, uint64(a.i))
	case attrString:
		n += sizeBytesField(4, int64(len(a.s)))
	case attrInts:
		for _, v := range a.ints {
			n += sizeVarintField(8, uint64(v))
		}
	}
	return n
}

func (a *attribute) emit(_ context.Context, ww *wireWriter) {
	ww.stringField(1, a.name)
	ww.varintField(20, uint64(a.kind))
	switch a.kind {
	case attrFloat:
		ww.float32Field(2, math.Float32bits(a.f))
	case attrInt:
		ww.varintField(3, uint64(a.i))
	case attrString:
		ww.stringField(4, a.s)
	case attrInts:
		for _, v := range a.ints {
			ww.varintField(8, uint64(v))
		}
	}
}

// dim is one dimension of a graph input or output: a size or a symbol.
type dim struct {
	value int64
	param string
}

func sym(name string) dim { return dim{param: name} }
func fixed(n int64) dim   { return dim{value: n} }
func (d dim) isSym() bool { return d.param != "" }

// TensorShapeProto.Dimension
func (d dim) size() int64 {
	if d.isSym() {
		return sizeBytesField(2, int64(len(d.param)))
	}
	return sizeVarintField(1, uint64(d.value))
}

func (d dim) emit(_ context.Context, ww *wireWriter) {
	if d.isSym() {
		ww.stringField(2, d.param)
		return
	}
	ww.varintField(1, uint64(d.value))
}

// ValueInfoProto of a tensor: name, element type and shape. A rank-0
// tensor still gets an (empty) shape, or its rank would be unknown.
type valueInfo struct {
	name  string
	dtype dataType
	dims  []dim
}

// TensorShapeProto
type shapeProto []dim

func (s shapeProto) size() int64 {
	var n int64
	for _, d := range s {
		n += sizeMessageField(1, d)
	}
	return n
}

func (s shapeProto) emit(ctx context.Context, ww *wireWriter) {
	for _, d := range s {
		ww.messageField(ctx, 1, d)
	}
}

// TypeProto.Tensor
type tensorType struct {
	dtype dataType
	shape shapeProto
}

func (t tensorType) size() int64 {
	return sizeVarintField(1, uint64(t.dtype)) + sizeMessageField(2, t.shape)
}

func (t tensorType) emit(ctx context.Context, ww *wireWriter) {
	ww.varintField(1, uint64(t.dtype))
	ww.messageField(ctx, 2, t.shape)
}

// TypeProto with its tensor_type set.
type typeProto struct{ tensor tensorType }

func (t typeProto) size() int64 { return sizeMessageField(1, t.tensor) }

func (t typeProto) emit(ctx context.Context, ww *wireWriter) { ww.messageField(ctx, 1, t.tensor) }

func (v *valueInfo) typ() typeProto {
	return typeProto{tensorType{dtype: v.dtype, shape: v.dims}}
}

func (v *valueInfo) size() int64 {
	return sizeBytesField(1, int64(len(v.name))) + sizeMessageField(2, v.typ())
}

func (v *valueInfo) emit(ctx context.Context, ww *wireWriter) {
	ww.stringField(1, v.name)
	ww.messageField(ctx, 2, v.typ())
}

// StringStringEntryProto
type entry struct{ key, value string }

func (e entry) size() int64 {
	return sizeBytesField(1, int64(len(e.key))) + sizeBytesField(2, int64(len(e.value)))
}

func (e entry) emit(_ context.Context, ww *wireWriter) {
	ww.stringField(1, e.key)
	ww.stringField(2, e.value)
}

var (
	_ message = dim{}
	_ message = shapeProto(nil)
	_ message = entry{}
	_ message = (*tensor)(nil)
)
