package synth

import (
	"context"
	"strconv"
)

// tensor is one initializer (TensorProto). Small constants (shapes, axes,
// masks) hold their encoded bytes; parameters hold only how to draw them,
// and their bytes are generated while they are written.
type tensor struct {
	name  string
	dims  []int64
	dtype dataType
	raw   []byte      // constants: the encoded little-endian data
	init  *weightInit // parameters drawn at random; nil for constants and loaded weights
	ref   *paramRef   // parameters: nil for constants
	ext   *externalRef
}

// paramRef is what a parameter is outside the graph: its network, its
// shape in torch's state dict, and the source of loaded values.
type paramRef struct {
	net        string
	name       string  // state-dict name (the initializer's, unless anonymised)
	torch      []int64 // shape in torch's layout
	transposed bool    // graph holds the transpose of torch's [out, in]
	weights    Weights // nil: drawn by init
}

// externalRef places a tensor's data in a file beside model.onnx.
type externalRef struct {
	location      string
	offset, bytes int64
}

func (t *tensor) isParam() bool { return t.ref != nil }

func (t *tensor) numel() int64 {
	n := int64(1)
	for _, d := range t.dims {
		n *= d
	}
	return n
}

func (t *tensor) dataBytes() int64 { return t.numel() * t.dtype.elemSize() }

func (t *tensor) entries() []entry {
	return []entry{
		{"location", t.ext.location},
		{"offset", strconv.FormatInt(t.ext.offset, 10)},
		{"length", strconv.FormatInt(t.ext.bytes, 10)},
	}
}

func (t *tensor) size() int64 {
	var n int64
	for _, d := range t.dims {
		n += sizeVarintField(1, uint64(d))
	}
	n += sizeVarintField(2, uint64(t.dtype))
	n += sizeBytesField(8, int64(len(t.name)))
	if t.ext == nil {
		return n + sizeBytesField(9, t.dataBytes())
	}
	for _, e := range t.entries() {
		n += sizeMessageField(13, e)
	}
	return n + sizeVarintField(14, 1)
}

func (t *tensor) emit(ctx context.Context, ww *wireWriter) {
	for _, d := range t.dims {
		ww.varintField(1, uint64(d))
	}
	ww.varintField(2, uint64(t.dtype))
	ww.stringField(8, t.name)
	if t.ext == nil {
		ww.bytesHeader(9, t.dataBytes())
		t.writeData(ww)
		return
	}
	for _, e := range t.entries() {
		ww.messageField(ctx, 13, e)
	}
	ww.varintField(14, 1) // data_location: EXTERNAL
}
