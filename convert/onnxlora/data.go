package onnxlora

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sdgate/sdgate/sd/half"
)

func float32frombits(v uint32) float32 { return math.Float32frombits(v) }

// numel is the element count of dims, or -1 when a dim is negative or the
// count overflows what a tensor may hold.
func numel(dims []int64) int64 {
	n := int64(1)
	for _, d := range dims {
		if d < 0 || (d > 0 && n > math.MaxInt32*int64(8)/d) {
			return -1
		}
		n *= d
	}
	return n
}

// values decodes t's data to float32, reading external data under dir
// (bounds-checked: the file named must lie inside dir and hold the range).
func (t *tensor) values(dir string) ([]float32, error) {
	n := numel(t.dims)
	if n < 0 {
		return nil, fmt.Errorf("%w: %q: bad dims %v", ErrModel, t.name, t.dims)
	}
	size := int64(4)
	if t.dataType == dataFloat16 {
		size = 2
	}
	switch {
	case t.external != nil:
		raw, err := readExternal(dir, t.name, t.external, n*size)
		if err != nil {
			return nil, err
		}
		return decodeRaw(raw, t.dataType, n), nil
	case t.raw != nil:
		if int64(len(t.raw)) != n*size {
			return nil, fmt.Errorf("%w: %q: %d bytes of data for %d values", ErrModel, t.name, len(t.raw), n)
		}
		return decodeRaw(t.raw, t.dataType, n), nil
	}
	vals, err := t.typedValues()
	if err != nil {
		return nil, err
	}
	if int64(len(vals)) != n {
		return nil, fmt.Errorf("%w: %q: %d values of data for shape %v", ErrModel, t.name, len(vals), t.dims)
	}
	return vals, nil
}

func decodeRaw(raw []byte, dataType uint64, n int64) []float32 {
	out := make([]float32, n)
	if dataType == dataFloat16 {
		half.Decode(out, raw)
		return out
	}
	for i := range out {
		out[i] = math.Float32frombits(binary.LittleEndian.Uint32(raw[4*i:]))
	}
	return out
}

// encodeRaw is decodeRaw's inverse (float16 rounds to nearest even).
func encodeRaw(vals []float32, dataType uint64) []byte {
	if dataType == dataFloat16 {
		out := make([]byte, 2*len(vals))
		half.Encode(out, vals)
		return out
	}
	out := make([]byte, 4*len(vals))
	for i, v := range vals {
		binary.LittleEndian.PutUint32(out[4*i:], math.Float32bits(v))
	}
	return out
}

// readExternal reads an external tensor's bytes: location relative to dir
// and inside it, offset and length within the file, length what the
// tensor's shape needs.
func readExternal(dir, name string, ext map[string]string, want int64) ([]byte, error) {
	loc := ext["location"]
	if loc == "" || filepath.IsAbs(loc) || !filepath.IsLocal(loc) || strings.ContainsRune(loc, '\\') {
		return nil, fmt.Errorf("%w: %q: external data location %q is not a file beside the model", ErrModel, name, loc)
	}
	var offset, length int64
	var err error
	if s := ext["offset"]; s != "" {
		if offset, err = strconv.ParseInt(s, 10, 64); err != nil || offset < 0 {
			return nil, fmt.Errorf("%w: %q: external offset %q", ErrModel, name, s)
		}
	}
	length = want
	if s := ext["length"]; s != "" {
		if length, err = strconv.ParseInt(s, 10, 64); err != nil || length != want {
			return nil, fmt.Errorf("%w: %q: external length %q, its shape needs %d bytes", ErrModel, name, s, want)
		}
	}
	f, err := os.Open(filepath.Join(dir, loc))
	if err != nil {
		return nil, fmt.Errorf("%w: %q: %w", ErrModel, name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if offset > st.Size() || length > st.Size()-offset {
		return nil, fmt.Errorf("%w: %q: external range %d+%d is past the end of %s (%d bytes)", ErrModel, name, offset, length, loc, st.Size())
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, offset); err != nil && err != io.EOF {
		return nil, fmt.Errorf("read %s: %w", loc, err)
	}
	return buf, nil
}
