package synth

import (
	"context"
	"fmt"
	"io"

	"google.golang.org/protobuf/encoding/protowire"
)

// Models are written as a stream: every message knows its encoded size
// before a byte of it is written, so a length prefix can go out first and a
// gigabyte of weights can follow straight from the random generator.

// message is one protobuf message that can size and stream itself.
type message interface {
	size() int64
	emit(ctx context.Context, w *wireWriter)
}

// wireWriter writes protobuf wire format to an io.Writer. The first error
// sticks and every later call does nothing, so emit methods stay linear.
type wireWriter struct {
	w       io.Writer
	n       int64 // bytes written so far
	err     error
	scratch []byte

	// zeroWeights writes parameters as zeros instead of drawing them: same
	// byte count, a fraction of the time (size checks of the big presets).
	zeroWeights bool
}

func newWireWriter(w io.Writer) *wireWriter {
	return &wireWriter{w: w, scratch: make([]byte, 0, 32)}
}

func (ww *wireWriter) write(p []byte) {
	if ww.err != nil {
		return
	}
	n, err := ww.w.Write(p)
	ww.n += int64(n)
	ww.err = err
}

func (ww *wireWriter) fail(err error) {
	if ww.err == nil {
		ww.err = err
	}
}

func (ww *wireWriter) varintField(num protowire.Number, v uint64) {
	b := protowire.AppendTag(ww.scratch[:0], num, protowire.VarintType)
	ww.write(protowire.AppendVarint(b, v))
}

func (ww *wireWriter) float32Field(num protowire.Number, bits uint32) {
	b := protowire.AppendTag(ww.scratch[:0], num, protowire.Fixed32Type)
	ww.write(protowire.AppendFixed32(b, bits))
}

// bytesHeader starts a length-delimited field whose n bytes the caller writes.
func (ww *wireWriter) bytesHeader(num protowire.Number, n int64) {
	b := protowire.AppendTag(ww.scratch[:0], num, protowire.BytesType)
	ww.write(protowire.AppendVarint(b, uint64(n)))
}

func (ww *wireWriter) stringField(num protowire.Number, s string) {
	ww.bytesHeader(num, int64(len(s)))
	if ww.err == nil {
		_, err := io.WriteString(ww.w, s)
		ww.n += int64(len(s))
		ww.err = err
	}
}

// messageField writes m as a length-delimited field and checks that m wrote
// exactly the size it announced: a mismatch would corrupt everything after it.
func (ww *wireWriter) messageField(ctx context.Context, num protowire.Number, m message) {
	size := m.size()
	ww.bytesHeader(num, size)
	start := ww.n
	m.emit(ctx, ww)
	if ww.err == nil && ww.n-start != size {
		ww.fail(fmt.Errorf("%w: %T announced %d bytes, wrote %d", errEncoding, m, size, ww.n-start))
	}
}

// Sizes of encoded fields, for size() methods.

func sizeTag(num protowire.Number) int64 { return int64(protowire.SizeTag(num)) }

func sizeVarintField(num protowire.Number, v uint64) int64 {
	return sizeTag(num) + int64(protowire.SizeVarint(v))
}

func sizeFloat32Field(num protowire.Number) int64 { return sizeTag(num) + 4 }

// sizeBytesField is the encoded size of a length-delimited field of n bytes.
func sizeBytesField(num protowire.Number, n int64) int64 {
	return sizeTag(num) + int64(protowire.SizeVarint(uint64(n))) + n
}

func sizeMessageField(num protowire.Number, m message) int64 {
	return sizeBytesField(num, m.size())
}
