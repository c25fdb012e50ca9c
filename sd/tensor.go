package sd

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/sdgate/sdgate/sd/half"
)

// floatTensor is an ORT tensor of float32 or float16 elements seen as float32
// by the pipeline. fp32 tensors share their memory with ORT, so writing Data()
// changes the next Run's input without a copy; fp16 tensors convert on Load
// and Store. Tensors are created once per generation and reused every step.
type floatTensor struct {
	f16   bool
	data  []float32 // fp32: ORT's memory; fp16: a staging copy
	raw   []byte    // fp16 only: ORT's memory
	value ort.Value
}

func newFloatTensor(dtype ort.TensorElementDataType, shape ...int64) (*floatTensor, error) {
	s := ort.NewShape(shape...)
	n := s.FlattenedSize()
	switch dtype {
	case ort.TensorElementDataTypeFloat:
		data := make([]float32, n)
		t, err := ort.NewTensor(s, data)
		if err != nil {
			return nil, err
		}
		return &floatTensor{data: data, value: t}, nil
	case ort.TensorElementDataTypeFloat16:
		raw := make([]byte, 2*n)
		t, err := ort.NewCustomDataTensor(s, raw, ort.TensorElementDataTypeFloat16)
		if err != nil {
			return nil, err
		}
		return &floatTensor{f16: true, data: make([]float32, n), raw: raw, value: t}, nil
	}
	return nil, fmt.Errorf("unsupported float tensor type %s", dtype)
}

// Store writes src (len == the tensor's size) into the tensor.
func (t *floatTensor) Store(src []float32) {
	if t.f16 {
		half.Encode(t.raw, src)
		return
	}
	copy(t.data, src)
}

// Load returns the tensor's contents as float32. The slice is reused by the
// next Load: copy it to keep it.
func (t *floatTensor) Load() []float32 {
	if t.f16 {
		half.Decode(t.data, t.raw)
	}
	return t.data
}

func (t *floatTensor) Destroy() {
	if t != nil && t.value != nil {
		t.value.Destroy()
		t.value = nil
	}
}

// idsTensor is token ids as the text encoder's input: int32, or int64 for
// exports that declare it (wide).
func idsTensor(shape ort.Shape, ids []int32, wide bool) (ort.Value, error) {
	if !wide {
		return ort.NewTensor(shape, ids)
	}
	ids64 := make([]int64, len(ids))
	for i, id := range ids {
		ids64[i] = int64(id)
	}
	return ort.NewTensor(shape, ids64)
}
