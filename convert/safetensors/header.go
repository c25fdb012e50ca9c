// Package safetensors reads and writes the safetensors format: an 8-byte
// little-endian header length N, N bytes of JSON describing every tensor,
// then the tensors' bytes back to back. Files come from the internet, so
// the header is checked completely before any tensor is read: offsets lie
// inside the data, do not overlap, leave no holes, and each tensor's byte
// length equals its dtype size times its element count, without overflow.
// Tensors are read with ReadAt through section readers: a 7 GB checkpoint
// is never held in memory.
package safetensors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"unicode/utf8"
)

// Limits on what a header may declare. safetensors' own reader caps the
// header at 100 MB; real SD checkpoints need well under 1 MB.
const (
	MaxHeaderBytes = 100 << 20
	maxRank        = 16
	maxNameBytes   = 1 << 10
)

var (
	// ErrFormat: the bytes are not a well-formed safetensors file.
	ErrFormat = errors.New("not a valid safetensors file")
	// ErrPickle: the file is a PyTorch pickle checkpoint, which is refused.
	ErrPickle = errors.New("pickle checkpoints are refused")
	// ErrNotFound: no tensor has the name asked for.
	ErrNotFound = errors.New("no such tensor")
	// ErrDType: a tensor's dtype cannot be converted as asked.
	ErrDType = errors.New("unsupported dtype")
)

// DType is a tensor element type as safetensors names it.
type DType string

// The dtypes safetensors defines.
const (
	Bool   DType = "BOOL"
	U8     DType = "U8"
	I8     DType = "I8"
	F8E5M2 DType = "F8_E5M2"
	F8E4M3 DType = "F8_E4M3"
	I16    DType = "I16"
	U16    DType = "U16"
	F16    DType = "F16"
	BF16   DType = "BF16"
	I32    DType = "I32"
	U32    DType = "U32"
	F32    DType = "F32"
	F64    DType = "F64"
	I64    DType = "I64"
	U64    DType = "U64"
)

// Size is the element size in bytes; ok is false for an unknown dtype.
func (d DType) Size() (size int64, ok bool) {
	switch d {
	case Bool, U8, I8, F8E5M2, F8E4M3:
		return 1, true
	case I16, U16, F16, BF16:
		return 2, true
	case I32, U32, F32:
		return 4, true
	case F64, I64, U64:
		return 8, true
	}
	return 0, false
}

// Info describes one tensor. Begin and End are byte offsets into the data
// section (after the header), End exclusive.
type Info struct {
	Name       string
	DType      DType
	Shape      []int64
	Begin, End int64
}

// Numel is the element count (1 for a scalar).
func (t Info) Numel() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= d // checked against overflow when the header was parsed
	}
	return n
}

// Bytes is the tensor's data length.
func (t Info) Bytes() int64 { return t.End - t.Begin }

// header is the parsed JSON: tensors sorted by name, plus metadata.
type header struct {
	tensors  []Info
	metadata map[string]string
}

type rawTensor struct {
	DType   DType   `json:"dtype"`
	Shape   []int64 `json:"shape"`
	Offsets []int64 `json:"data_offsets"`
}

// parseHeader checks the JSON header against a data section of dataLen
// bytes. Every inconsistency is an ErrFormat naming the tensor.
func parseHeader(js []byte, dataLen int64) (*header, error) {
	if !utf8.Valid(js) {
		return nil, fmt.Errorf("%w: header is not UTF-8", ErrFormat)
	}
	trimmed := bytes.TrimRight(js, " ") // writers pad the header to 8 bytes with spaces
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return nil, fmt.Errorf("%w: header is not a JSON object", ErrFormat)
	}
	var raw map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("%w: header: %v", ErrFormat, err)
	}
	if dec.More() {
		return nil, fmt.Errorf("%w: data after the header object", ErrFormat)
	}
	h := &header{metadata: map[string]string{}}
	for name, msg := range raw {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &h.metadata); err != nil {
				return nil, fmt.Errorf("%w: __metadata__ must map strings to strings: %v", ErrFormat, err)
			}
			continue
		}
		t, err := parseTensor(name, msg)
		if err != nil {
			return nil, err
		}
		h.tensors = append(h.tensors, t)
	}
	if err := checkLayout(h.tensors, dataLen); err != nil {
		return nil, err
	}
	sort.Slice(h.tensors, func(i, j int) bool { return h.tensors[i].Name < h.tensors[j].Name })
	return h, nil
}

func parseTensor(name string, msg json.RawMessage) (Info, error) {
	if name == "" || len(name) > maxNameBytes {
		return Info{}, fmt.Errorf("%w: tensor name of %d bytes", ErrFormat, len(name))
	}
	var rt rawTensor
	if err := json.Unmarshal(msg, &rt); err != nil {
		return Info{}, fmt.Errorf("%w: tensor %q: %v", ErrFormat, name, err)
	}
	size, ok := rt.DType.Size()
	if !ok {
		return Info{}, fmt.Errorf("%w: tensor %q: unknown dtype %q", ErrFormat, name, rt.DType)
	}
	if rt.Shape == nil && !bytes.Contains(msg, []byte(`"shape"`)) {
		return Info{}, fmt.Errorf("%w: tensor %q has no shape", ErrFormat, name)
	}
	if len(rt.Shape) > maxRank {
		return Info{}, fmt.Errorf("%w: tensor %q has rank %d (at most %d)", ErrFormat, name, len(rt.Shape), maxRank)
	}
	if len(rt.Offsets) != 2 {
		return Info{}, fmt.Errorf("%w: tensor %q: data_offsets needs 2 numbers, has %d", ErrFormat, name, len(rt.Offsets))
	}
	bytesWanted := size
	for _, d := range rt.Shape {
		if d < 0 {
			return Info{}, fmt.Errorf("%w: tensor %q: negative dimension %d", ErrFormat, name, d)
		}
		if d != 0 && bytesWanted > math.MaxInt64/d {
			return Info{}, fmt.Errorf("%w: tensor %q: shape %v overflows", ErrFormat, name, rt.Shape)
		}
		bytesWanted *= d
	}
	b, e := rt.Offsets[0], rt.Offsets[1]
	if b < 0 || e < b {
		return Info{}, fmt.Errorf("%w: tensor %q: bad data_offsets [%d, %d]", ErrFormat, name, b, e)
	}
	if e-b != bytesWanted {
		return Info{}, fmt.Errorf("%w: tensor %q: %s %v needs %d bytes, data_offsets give %d",
			ErrFormat, name, rt.DType, rt.Shape, bytesWanted, e-b)
	}
	return Info{Name: name, DType: rt.DType, Shape: rt.Shape, Begin: b, End: e}, nil
}

// checkLayout requires the tensors to tile the data section exactly, as
// the format demands: no overlap, no hole, nothing past the end.
func checkLayout(tensors []Info, dataLen int64) error {
	order := make([]Info, len(tensors))
	copy(order, tensors)
	sort.Slice(order, func(i, j int) bool {
		if order[i].Begin != order[j].Begin {
			return order[i].Begin < order[j].Begin
		}
		return order[i].End < order[j].End
	})
	var at int64
	for i, t := range order {
		if t.End > dataLen {
			return fmt.Errorf("%w: tensor %q ends at byte %d, past the data's %d (truncated file?)",
				ErrFormat, t.Name, t.End, dataLen)
		}
		switch {
		case t.Begin < at:
			return fmt.Errorf("%w: tensor %q overlaps tensor %q", ErrFormat, t.Name, order[i-1].Name)
		case t.Begin > at:
			return fmt.Errorf("%w: hole of %d bytes before tensor %q", ErrFormat, t.Begin-at, t.Name)
		}
		at = t.End
	}
	if at != dataLen {
		return fmt.Errorf("%w: %d bytes after the last tensor", ErrFormat, dataLen-at)
	}
	return nil
}
