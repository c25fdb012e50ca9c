package synth

import (
	"errors"
	"fmt"
	"slices"

	"github.com/sdgate/sdgate/sd/half"
)

// Weights supplies a model's parameters instead of random draws: `sdgate
// import` passes a checkpoint's tensors. A parameter is named by its
// network (text_encoder, unet, vae_decoder, vae_encoder) and its name in
// the diffusers / transformers state dict (down_blocks.0.resnets.0.conv1.weight),
// and comes in torch's layout: a linear weight is [out, in], a norm's gain
// is a vector. The graph's own layout (MatMul's [in, out]) is synth's
// business.
type Weights interface {
	// Check reports whether the parameter exists with this shape; its
	// error names what is missing or different.
	Check(net, name string, shape []int64) error
	// Float32 returns the parameter's values, row-major in torch's layout.
	Float32(net, name string, shape []int64) ([]float32, error)
}

// ErrWeights: Options.Weights lacks parameters the model needs, or holds
// them with other shapes.
var ErrWeights = errors.New("weights do not fit the model")

// Param is one parameter of a model folder, for exporting its weights
// (sdgate synth --checkpoint).
type Param struct {
	Net   string  // text_encoder, unet, vae_decoder or vae_encoder
	Name  string  // state-dict name
	Shape []int64 // torch's layout
	FP16  bool    // the folder stores it as float16; Values are rounded to it
	t     *tensor
}

// Values are the parameter's values as the folder holds them, in torch's
// layout (drawn anew each call: nothing is kept).
func (p Param) Values() ([]float32, error) { return p.t.torchValues() }

// Params lists every parameter of the folder that Write would write for
// opts, network by network in writing order.
func Params(opts Options) ([]Param, error) {
	opts, p, _, err := prepare(opts)
	if err != nil {
		return nil, err
	}
	var params []Param
	for _, net := range plan(p, opts) {
		for _, t := range net.graph.inits {
			if t.isParam() {
				params = append(params, Param{Net: t.ref.net, Name: t.ref.name, Shape: t.ref.torch, FP16: t.dtype == dtFloat16, t: t})
			}
		}
	}
	return params, nil
}

// checkWeights asks w for every parameter of nets before anything is
// written, so a missing tensor is named at once, not half-way through.
func checkWeights(nets []plannedNet) error {
	var errs []error
	for _, net := range nets {
		for _, t := range net.graph.inits {
			if !t.isParam() || t.ref.weights == nil {
				continue
			}
			if err := t.ref.weights.Check(t.ref.net, t.ref.name, t.ref.torch); err != nil {
				errs = append(errs, err)
			}
		}
	}
	switch {
	case len(errs) == 0:
		return nil
	case len(errs) > 10:
		errs = append(errs[:10], fmt.Errorf("and %d more", len(errs)-10))
	}
	return fmt.Errorf("%w: %w", ErrWeights, errors.Join(errs...))
}

// graphValues are the tensor's values in the graph's layout.
func (t *tensor) graphValues() ([]float32, error) {
	if t.ref.weights == nil {
		vals := make([]float32, t.numel())
		t.init.fill(vals, 0)
		return vals, nil
	}
	vals, err := t.ref.weights.Float32(t.ref.net, t.ref.name, t.ref.torch)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", t.ref.net, t.ref.name, err)
	}
	if int64(len(vals)) != t.numel() {
		return nil, fmt.Errorf("%w: %s %s: %d values for shape %v", ErrWeights, t.ref.net, t.ref.name, len(vals), t.ref.torch)
	}
	if t.ref.transposed {
		vals = transpose(vals, t.ref.torch[0], t.ref.torch[1])
	}
	return vals, nil
}

// torchValues are the values in torch's layout, rounded to the stored type.
func (t *tensor) torchValues() ([]float32, error) {
	vals, err := t.graphValues()
	if err != nil {
		return nil, err
	}
	if t.ref.transposed {
		vals = transpose(vals, t.dims[0], t.dims[1])
	} else if t.ref.weights != nil {
		vals = slices.Clone(vals) // the source's slice stays the source's
	}
	if t.dtype == dtFloat16 {
		for i, v := range vals {
			vals[i] = half.FromFloat32(v).Float32()
		}
	}
	return vals, nil
}

// writeLoaded writes a parameter whose values come from Weights; the
// tensor is in memory once, as float32, while it is encoded.
func (t *tensor) writeLoaded(ww *wireWriter) {
	vals, err := t.graphValues()
	if err != nil {
		ww.fail(err)
		return
	}
	elem := t.dtype.elemSize()
	buf := make([]byte, min(int64(len(vals)), chunkElems)*elem)
	for start := 0; start < len(vals) && ww.err == nil; start += chunkElems {
		chunk := vals[start:min(start+chunkElems, len(vals))]
		out := buf[:int64(len(chunk))*elem]
		encodeFloats(out, chunk, t.dtype)
		ww.write(out)
	}
}

// transpose turns a row-major [rows, cols] matrix into [cols, rows].
func transpose(m []float32, rows, cols int64) []float32 {
	out := make([]float32, len(m))
	for r := range rows {
		row := m[r*cols : (r+1)*cols]
		for c, v := range row {
			out[int64(c)*rows+r] = v
		}
	}
	return out
}
