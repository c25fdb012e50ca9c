package sd

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// textEncoder is CLIP's text transformer: token ids -> last_hidden_state.
type textEncoder struct {
	*network
	ids64   bool  // input_ids int64 (optimum) rather than int32 (diffusers script)
	length  int64 // tokens per prompt (77)
	hidden  int64 // width of the embeddings (768 for SD 1.x)
	outType ort.TensorElementDataType
}

func newTextEncoder(n *network, hiddenFromUNet int64) (*textEncoder, error) {
	length, ids64, err := idsInput(n)
	if err != nil {
		return nil, err
	}
	e := &textEncoder{network: n, length: length, ids64: ids64}
	out, ok := n.output("last_hidden_state")
	if err := n.requireFloat(out, ok, "last_hidden_state", 3); err != nil {
		return nil, err
	}
	e.outType = out.Type
	e.hidden = out.Dims[2]
	if e.hidden <= 0 {
		e.hidden = hiddenFromUNet
	}
	if e.hidden <= 0 {
		return nil, n.bad("cannot tell the embedding width: last_hidden_state and the UNet's encoder_hidden_states both leave it symbolic")
	}
	return e, nil
}

// encode turns batch rows of token ids (each e.length long) into embeddings
// [batch, length, hidden] written to dst.
func (e *textEncoder) encode(ids []int32, batch int, dst []float32) error {
	shape := ort.NewShape(int64(batch), e.length)
	if int64(len(ids)) != shape.FlattenedSize() {
		return fmt.Errorf("text encoder: %d ids for shape %v", len(ids), shape)
	}
	in, err := idsTensor(shape, ids, e.ids64)
	if err != nil {
		return err
	}
	defer in.Destroy()
	out, err := newFloatTensor(e.outType, int64(batch), e.length, e.hidden)
	if err != nil {
		return err
	}
	defer out.Destroy()
	if err := e.run([]ort.Value{in}, []ort.Value{out.value}); err != nil {
		return err
	}
	copy(dst, out.Load())
	return nil
}

// idsInput checks a text encoder's one input, input_ids [batch, tokens]
// of int32 or int64 (wide), and says its token count (77 when symbolic).
func idsInput(n *network) (length int64, wide bool, err error) {
	ids, ok := n.input("input_ids")
	if !ok || len(n.inputs) != 1 {
		return 0, false, n.bad("want exactly one input, input_ids")
	}
	switch ids.Type {
	case ort.TensorElementDataTypeInt32:
	case ort.TensorElementDataTypeInt64:
		wide = true
	default:
		return 0, false, n.bad("input_ids is %s, want int32 or int64", ids.Type)
	}
	if ids.rank() != 2 {
		return 0, false, n.bad("input_ids has rank %d, want 2 [batch, tokens]", ids.rank())
	}
	length = 77
	if ids.Dims[1] > 0 {
		length = ids.Dims[1]
	}
	return length, wide, nil
}
