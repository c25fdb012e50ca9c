package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"

	"github.com/sdgate/sdgate/sd/half"
)

// Entry is one tensor to write: its description and a function that
// writes exactly its bytes (dtype size times element count), so tensors
// stream from their source and are never gathered in memory.
type Entry struct {
	Name  string
	DType DType
	Shape []int64
	Data  func(w io.Writer) error
}

// Float32Entry is an Entry whose data are float32 values stored as dt
// (F32, F16 or BF16).
func Float32Entry(name string, dt DType, shape []int64, values []float32) Entry {
	return Entry{Name: name, DType: dt, Shape: shape, Data: func(w io.Writer) error {
		buf, err := EncodeFloat32(values, dt)
		if err != nil {
			return err
		}
		_, err = w.Write(buf)
		return err
	}}
}

// EncodeFloat32 encodes values as little-endian dt (F32, F16 or BF16;
// BF16 rounds to nearest even).
func EncodeFloat32(values []float32, dt DType) ([]byte, error) {
	switch dt {
	case F32:
		buf := make([]byte, 4*len(values))
		for i, v := range values {
			binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
		}
		return buf, nil
	case F16:
		buf := make([]byte, 2*len(values))
		if len(values) > 0 {
			half.Encode(buf, values)
		}
		return buf, nil
	case BF16:
		buf := make([]byte, 2*len(values))
		for i, v := range values {
			bits := math.Float32bits(v)
			if v == v { // NaN stays NaN: no rounding into the exponent
				bits += 0x7fff + (bits>>16)&1
			}
			binary.LittleEndian.PutUint16(buf[2*i:], uint16(bits>>16))
		}
		return buf, nil
	}
	return nil, fmt.Errorf("%w: cannot encode float32 as %s", ErrDType, dt)
}

// Write writes a safetensors file: the header (padded with spaces to a
// multiple of 8 bytes, as the reference writer does) and then each entry's
// data in the order given.
func Write(w io.Writer, metadata map[string]string, entries []Entry) error {
	hdr := make(map[string]any, len(entries)+1)
	if len(metadata) > 0 {
		hdr["__metadata__"] = metadata
	}
	var offset int64
	sizes := make([]int64, len(entries))
	for i, e := range entries {
		if _, dup := hdr[e.Name]; dup || e.Name == "" {
			return fmt.Errorf("safetensors write: tensor name %q empty or repeated", e.Name)
		}
		size, ok := e.DType.Size()
		if !ok {
			return fmt.Errorf("safetensors write: tensor %q: %w %q", e.Name, ErrDType, e.DType)
		}
		for _, d := range e.Shape {
			if d < 0 {
				return fmt.Errorf("safetensors write: tensor %q: negative dimension", e.Name)
			}
			size *= d
		}
		sizes[i] = size
		shape := e.Shape
		if shape == nil {
			shape = []int64{}
		}
		hdr[e.Name] = rawTensor{DType: e.DType, Shape: shape, Offsets: []int64{offset, offset + size}}
		offset += size
	}
	js, err := json.Marshal(hdr)
	if err != nil {
		return fmt.Errorf("safetensors write: %w", err)
	}
	for len(js)%8 != 0 {
		js = append(js, ' ')
	}
	var prefix [8]byte
	binary.LittleEndian.PutUint64(prefix[:], uint64(len(js)))
	if _, err := w.Write(prefix[:]); err != nil {
		return err
	}
	if _, err := w.Write(js); err != nil {
		return err
	}
	for i, e := range entries {
		cw := &countingWriter{w: w}
		if err := e.Data(cw); err != nil {
			return fmt.Errorf("safetensors write %q: %w", e.Name, err)
		}
		if cw.n != sizes[i] {
			return fmt.Errorf("safetensors write %q: wrote %d bytes, the header says %d", e.Name, cw.n, sizes[i])
		}
	}
	return nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
