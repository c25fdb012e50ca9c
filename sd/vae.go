package sd

import (
	ort "github.com/yalue/onnxruntime_go"
)

// vaeDecoder turns latents [b,4,h,w] into pixels [b,3,8h,8w] in [-1, 1].
type vaeDecoder struct {
	*network
	inType, outType ort.TensorElementDataType
}

func newVAEDecoder(n *network) (*vaeDecoder, error) {
	in, ok := n.input("latent_sample")
	if err := n.requireFloat(in, ok, "latent_sample", 4); err != nil {
		return nil, err
	}
	if len(n.inputs) != 1 {
		return nil, n.bad("want exactly one input, latent_sample")
	}
	out, ok := n.output("sample")
	if err := n.requireFloat(out, ok, "sample", 4); err != nil {
		return nil, err
	}
	return &vaeDecoder{network: n, inType: in.Type, outType: out.Type}, nil
}

// decode decodes one latent image (4*h*w values) into dst (3*8h*8w).
func (d *vaeDecoder) decode(latent []float32, h, w int64, dst []float32) error {
	in, err := newFloatTensor(d.inType, 1, 4, h, w)
	if err != nil {
		return err
	}
	defer in.Destroy()
	in.Store(latent)
	out, err := newFloatTensor(d.outType, 1, 3, 8*h, 8*w)
	if err != nil {
		return err
	}
	defer out.Destroy()
	if err := d.run([]ort.Value{in.value}, []ort.Value{out.value}); err != nil {
		return err
	}
	copy(dst, out.Load())
	return nil
}

// vaeEncoder turns pixels [b,3,H,W] in [-1, 1] into latents. Exporters give
// either the sampled latents or the distribution's mean and log-variance.
type vaeEncoder struct {
	*network
	inType, outType ort.TensorElementDataType
	outName         string
	parameters      bool // latent_parameters: [b,8,..] = mean, logvar
}

func newVAEEncoder(n *network) (*vaeEncoder, error) {
	in, ok := n.input("sample")
	if err := n.requireFloat(in, ok, "sample", 4); err != nil {
		return nil, err
	}
	e := &vaeEncoder{network: n, inType: in.Type}
	if out, ok := n.output("latent_sample"); ok {
		if err := n.requireFloat(out, ok, "latent_sample", 4); err != nil {
			return nil, err
		}
		e.outType, e.outName = out.Type, out.Name
		return e, nil
	}
	out, ok := n.output("latent_parameters")
	if err := n.requireFloat(out, ok, "latent_sample or latent_parameters", 4); err != nil {
		return nil, err
	}
	e.outType, e.outName, e.parameters = out.Type, out.Name, true
	return e, nil
}

// encode encodes one image (3*H*W values) and returns the graph's output:
// 4 channels of latents, or 8 (mean then log-variance) when e.parameters.
func (e *vaeEncoder) encode(pixels []float32, height, width int64) ([]float32, error) {
	in, err := newFloatTensor(e.inType, 1, 3, height, width)
	if err != nil {
		return nil, err
	}
	defer in.Destroy()
	in.Store(pixels)
	channels := int64(4)
	if e.parameters {
		channels = 8
	}
	out, err := newFloatTensor(e.outType, 1, channels, height/8, width/8)
	if err != nil {
		return nil, err
	}
	defer out.Destroy()
	if err := e.run([]ort.Value{in.value}, []ort.Value{out.value}); err != nil {
		return nil, err
	}
	return append([]float32(nil), out.Load()...), nil
}
