package sd

import (
	"fmt"
	"strconv"
	"strings"

	ort "github.com/yalue/onnxruntime_go"
)

// xlEncoder is one of SDXL's text encoders as optimum exports them:
// input_ids in; every layer's hidden state out (hidden_states.0 is the
// embeddings, hidden_states.L the last layer before the final norm), and
// for text_encoder_2 the projected pooled output text_embeds. SDXL
// conditions on the penultimate hidden state, hidden_states.(L-1).
type xlEncoder struct {
	*network
	ids64      bool
	length     int64 // tokens per prompt
	hidden     int64 // width of the hidden states
	hiddenName string
	hiddenType ort.TensorElementDataType
	pooledDim  int64 // text_embeds width; 0 when not read
	pooledType ort.TensorElementDataType
}

// newXLEncoder checks an SDXL text encoder's signature; pooled asks for
// text_embeds too (text_encoder_2).
func newXLEncoder(n *network, pooled bool) (*xlEncoder, error) {
	length, ids64, err := idsInput(n)
	if err != nil {
		return nil, err
	}
	e := &xlEncoder{network: n, length: length, ids64: ids64}
	last := -1
	for _, o := range n.outputs {
		if k, ok := strings.CutPrefix(o.Name, "hidden_states."); ok {
			if i, err := strconv.Atoi(k); err == nil && i > last {
				last = i
			}
		}
	}
	if last < 1 {
		return nil, n.bad("no hidden_states.1 .. hidden_states.L outputs: SDXL conditions on the penultimate layer (export with output_hidden_states)")
	}
	e.hiddenName = "hidden_states." + strconv.Itoa(last-1)
	out, ok := n.output(e.hiddenName)
	if err := n.requireFloat(out, ok, e.hiddenName, 3); err != nil {
		return nil, err
	}
	if out.Dims[2] <= 0 {
		return nil, n.bad("%s has a symbolic width", e.hiddenName)
	}
	e.hidden, e.hiddenType = out.Dims[2], out.Type
	if pooled {
		te, ok := n.output("text_embeds")
		if err := n.requireFloat(te, ok, "text_embeds", 2); err != nil {
			return nil, err
		}
		if te.Dims[1] <= 0 {
			return nil, n.bad("text_embeds has a symbolic width")
		}
		e.pooledDim, e.pooledType = te.Dims[1], te.Type
	}
	return e, nil
}

// outputNames are the outputs the session computes, in run order.
func (e *xlEncoder) outputNames() []string {
	if e.pooledDim > 0 {
		return []string{e.hiddenName, "text_embeds"}
	}
	return []string{e.hiddenName}
}

// encode runs batch rows of token ids (e.length each) and writes the
// penultimate hidden states [batch, length, hidden] to hidden and, for
// text_encoder_2, text_embeds [batch, pooledDim] to pooled.
func (e *xlEncoder) encode(ids []int32, batch int, hidden, pooled []float32) error {
	shape := ort.NewShape(int64(batch), e.length)
	if int64(len(ids)) != shape.FlattenedSize() {
		return fmt.Errorf("%s: %d ids for shape %v", e.name, len(ids), shape)
	}
	in, err := idsTensor(shape, ids, e.ids64)
	if err != nil {
		return err
	}
	defer in.Destroy()
	hs, err := newFloatTensor(e.hiddenType, int64(batch), e.length, e.hidden)
	if err != nil {
		return err
	}
	defer hs.Destroy()
	outs := []ort.Value{hs.value}
	var pt *floatTensor
	if e.pooledDim > 0 {
		if pt, err = newFloatTensor(e.pooledType, int64(batch), e.pooledDim); err != nil {
			return err
		}
		defer pt.Destroy()
		outs = append(outs, pt.value)
	}
	if err := e.run([]ort.Value{in}, outs); err != nil {
		return err
	}
	copy(hidden, hs.Load())
	if pt != nil {
		copy(pooled, pt.Load())
	}
	return nil
}
