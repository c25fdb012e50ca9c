package sd

import (
	"fmt"

	ort "github.com/yalue/onnxruntime_go"
)

// timestepKind is how an exporter declared the UNet's timestep input.
type timestepKind int

const (
	timestepInt64Batch  timestepKind = iota // int64[batch]: optimum < 1.24
	timestepFloatBatch                      // float/float16[batch]: diffusers' script
	timestepFloatScalar                     // float/float16 scalar: optimum >= 1.24
)

func (k timestepKind) String() string {
	return [...]string{"int64[batch]", "float[batch]", "float scalar"}[k]
}

// unet predicts the noise (or v) in a batch of latents.
type unet struct {
	*network
	channels     int64 // input channels: 4, or 9 for inpainting UNets
	sampleType   ort.TensorElementDataType
	hiddenType   ort.TensorElementDataType
	outType      ort.TensorElementDataType
	hidden       int64 // encoder_hidden_states width, or -1 when symbolic
	sequence     int64 // encoder_hidden_states tokens when fixed, -1 when symbolic
	timestep     timestepKind
	timestepType ort.TensorElementDataType
	castScalar   bool // fp16 scalar timestep fed as float32 through a rewritten graph
	// condDim > 0: an LCM UNet whose timestep_cond input takes the
	// guidance-scale embedding [batch, condDim].
	condDim  int64
	condType ort.TensorElementDataType
	// SDXL's added conditioning: text_embeds [batch, textEmbedsDim] and
	// time_ids [batch, timeIDs]; textEmbedsDim 0 for SD 1.x/2.x UNets.
	textEmbedsDim, timeIDs int64
	textEmbedsType         ort.TensorElementDataType
	timeIDsType            ort.TensorElementDataType
}

func newUNet(n *network) (*unet, error) {
	for _, s := range n.inputs {
		switch s.Name {
		case "sample", "timestep", "encoder_hidden_states", "timestep_cond", "text_embeds", "time_ids":
		default:
			return nil, n.bad("unexpected input %q", s.Name)
		}
	}
	u := &unet{network: n}
	sample, ok := n.input("sample")
	if err := n.requireFloat(sample, ok, "sample", 4); err != nil {
		return nil, err
	}
	u.sampleType, u.channels = sample.Type, sample.Dims[1]
	if u.channels != 4 && u.channels != 9 {
		return nil, n.bad("sample has %d channels, want 4 (text-to-image) or 9 (inpainting)", u.channels)
	}
	hs, ok := n.input("encoder_hidden_states")
	if err := n.requireFloat(hs, ok, "encoder_hidden_states", 3); err != nil {
		return nil, err
	}
	u.hiddenType, u.hidden, u.sequence = hs.Type, hs.Dims[2], hs.Dims[1]
	out, ok := n.output("out_sample")
	if err := n.requireFloat(out, ok, "out_sample", 4); err != nil {
		return nil, err
	}
	u.outType = out.Type
	if tc, ok := n.input("timestep_cond"); ok {
		if err := n.requireFloat(tc, ok, "timestep_cond", 2); err != nil {
			return nil, err
		}
		if tc.Dims[1] <= 0 {
			return nil, n.bad("timestep_cond's width is symbolic; sdgate needs time_cond_proj_dim fixed")
		}
		u.condDim, u.condType = tc.Dims[1], tc.Type
	}
	if err := u.addedInputs(); err != nil {
		return nil, err
	}
	ts, ok := n.input("timestep")
	if !ok {
		return nil, n.bad(`no "timestep" input`)
	}
	u.timestepType = ts.Type
	switch {
	case ts.Type == ort.TensorElementDataTypeInt64 && ts.rank() == 1:
		u.timestep = timestepInt64Batch
	case isFloat(ts.Type) && ts.rank() == 1:
		u.timestep = timestepFloatBatch
	case isFloat(ts.Type) && ts.rank() == 0:
		u.timestep = timestepFloatScalar
		u.castScalar = ts.Type == ort.TensorElementDataTypeFloat16
	default:
		return nil, n.bad("timestep is %s of rank %d, want int64[batch], float[batch] or a float scalar", ts.Type, ts.rank())
	}
	return u, nil
}

func isFloat(t ort.TensorElementDataType) bool {
	return t == ort.TensorElementDataTypeFloat || t == ort.TensorElementDataTypeFloat16
}

// unetRun holds the tensors of one generation: allocated once, refilled each
// step, so the denoise loop allocates nothing per step.
type unetRun struct {
	u       *unet
	batch   int
	sample  *floatTensor
	hidden  *floatTensor
	out     *floatTensor
	tInt    *ort.Tensor[int64]
	tFloat  *floatTensor
	tScalar *ort.Scalar[float32]
	cond    *floatTensor // LCM: timestep_cond, filled once
	// SDXL: text_embeds and time_ids, filled once.
	textEmbeds, timeIDs *floatTensor
	inputs              []ort.Value
	outputs             []ort.Value
	tScratch            []float32
}

// prepare allocates the tensors for batch latents of h x w (latent pixels)
// conditioned on hidden ([batch, tokens, width], copied in once) and, for
// LCM UNets, timeCond ([batch, condDim]).
func (u *unet) prepare(batch int, h, w int64, hidden []float32, tokens int64, timeCond []float32, added *addedCond) (*unetRun, error) {
	r := &unetRun{u: u, batch: batch}
	b := int64(batch)
	var err error
	fail := func(e error) (*unetRun, error) { r.close(); return nil, fmt.Errorf("unet tensors: %w", e) }
	if r.sample, err = newFloatTensor(u.sampleType, b, u.channels, h, w); err != nil {
		return fail(err)
	}
	width := int64(len(hidden)) / (b * tokens)
	if r.hidden, err = newFloatTensor(u.hiddenType, b, tokens, width); err != nil {
		return fail(err)
	}
	r.hidden.Store(hidden)
	if r.out, err = newFloatTensor(u.outType, b, 4, h, w); err != nil {
		return fail(err)
	}
	var ts ort.Value
	switch {
	case u.timestep == timestepInt64Batch:
		if r.tInt, err = ort.NewTensor(ort.NewShape(b), make([]int64, b)); err != nil {
			return fail(err)
		}
		ts = r.tInt
	case u.timestep == timestepFloatBatch:
		if r.tFloat, err = newFloatTensor(u.timestepType, b); err != nil {
			return fail(err)
		}
		r.tScratch = make([]float32, b)
		ts = r.tFloat.value
	case u.timestepType == ort.TensorElementDataTypeFloat || u.castScalar:
		if r.tScalar, err = ort.NewScalar[float32](0); err != nil {
			return fail(err)
		}
		ts = r.tScalar
	}
	if u.condDim > 0 {
		if int64(len(timeCond)) != b*u.condDim {
			return fail(fmt.Errorf("timestep_cond: %d values for [%d, %d]", len(timeCond), b, u.condDim))
		}
		if r.cond, err = newFloatTensor(u.condType, b, u.condDim); err != nil {
			return fail(err)
		}
		r.cond.Store(timeCond)
	}
	if err := r.prepareAdded(added); err != nil {
		return fail(err)
	}
	// Inputs in the session's order (the graph's declaration order).
	for _, s := range u.inputs {
		switch s.Name {
		case "sample":
			r.inputs = append(r.inputs, r.sample.value)
		case "timestep", scalarInputName:
			r.inputs = append(r.inputs, ts)
		case "encoder_hidden_states":
			r.inputs = append(r.inputs, r.hidden.value)
		case "timestep_cond":
			r.inputs = append(r.inputs, r.cond.value)
		case "text_embeds":
			r.inputs = append(r.inputs, r.textEmbeds.value)
		case "time_ids":
			r.inputs = append(r.inputs, r.timeIDs.value)
		}
	}
	r.outputs = []ort.Value{r.out.value}
	return r, nil
}

// sampleBuffer is where the caller writes the UNet input for the next step
// (fp32 models: ORT's own memory, so no copy).
func (r *unetRun) sampleBuffer() []float32 { return r.sample.data }

// predict runs the UNet on sampleBuffer() at timestep t and returns its
// output, valid until the next call.
func (r *unetRun) predict(t float64) ([]float32, error) {
	switch {
	case r.tInt != nil:
		d := r.tInt.GetData()
		for i := range d {
			d[i] = int64(t)
		}
	case r.tFloat != nil:
		for i := range r.tScratch {
			r.tScratch[i] = float32(t)
		}
		r.tFloat.Store(r.tScratch)
	default:
		r.tScalar.Set(float32(t))
	}
	if r.sample.f16 {
		r.sample.Store(r.sample.data)
	}
	if err := r.u.run(r.inputs, r.outputs); err != nil {
		return nil, err
	}
	return r.out.Load(), nil
}

func (r *unetRun) close() {
	r.sample.Destroy()
	r.hidden.Destroy()
	r.out.Destroy()
	r.tFloat.Destroy()
	r.cond.Destroy()
	r.textEmbeds.Destroy()
	r.timeIDs.Destroy()
	if r.tInt != nil {
		r.tInt.Destroy()
	}
	if r.tScalar != nil {
		r.tScalar.Destroy()
	}
}
