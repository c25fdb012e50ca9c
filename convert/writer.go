package convert

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/sdgate/sdgate/convert/safetensors"
)

// Tensor is one graph parameter to export: network, diffusers name,
// torch-layout shape and a function giving its values.
type Tensor struct {
	Net    string
	Name   string
	Shape  []int64
	Values func() ([]float32, error)
}

// WriteOptions say how WriteLDM stores a model.
type WriteOptions struct {
	DType      safetensors.DType // F32, F16 or BF16
	Family     Family            // FamilySD1 (CLIP text encoder keys), FamilySD2 (OpenCLIP's) or FamilySDXL (both)
	Prediction string            // recorded as modelspec.prediction_type when set
	Metadata   map[string]string
}

// WriteLDM writes tensors as a single-file checkpoint in the LDM layout:
// the file a trainer would publish, with the key names OpenCheckpoint
// reads (SD 2's and SDXL's OpenCLIP q, k and v packed into in_proj, its
// projection transposed). Tensors are produced one at a time.
func WriteLDM(w io.Writer, tensors []Tensor, opts WriteOptions) error {
	md := map[string]string{}
	for k, v := range opts.Metadata {
		md[k] = v
	}
	switch opts.Prediction {
	case PredictV:
		md["modelspec.prediction_type"] = "v"
	case PredictEpsilon:
		md["modelspec.prediction_type"] = "epsilon"
	}
	entries, err := ldmEntries(tensors, opts)
	if err != nil {
		return err
	}
	return safetensors.Write(w, md, entries)
}

// ldmEntries are the checkpoint's tensors, named and shaped, whose values
// are drawn only when written.
func ldmEntries(tensors []Tensor, opts WriteOptions) ([]safetensors.Entry, error) {
	layout, levels := layoutFromNames(tensors)
	var entries []safetensors.Entry
	packed := map[string]*[3]Tensor{} // OpenCLIP in_proj key -> q, k, v
	for _, t := range tensors {
		if prefix := openCLIPPrefix(t.Net, opts.Family); prefix != "" {
			src, err := openCLIPSource(t.Name)
			if err != nil {
				return nil, err
			}
			key := prefix + src.key
			switch {
			case src.transpose:
				if len(t.Shape) != 2 {
					return nil, fmt.Errorf("%w: %s %s %v is not a matrix", ErrShape, t.Net, t.Name, t.Shape)
				}
				entries = append(entries, floatEntry(key, []int64{t.Shape[1], t.Shape[0]}, opts.DType, transposedValues(t)))
			case src.part < 0:
				entries = append(entries, floatEntry(key, t.Shape, opts.DType, t.Values))
			default:
				group := packed[key]
				if group == nil {
					group = &[3]Tensor{}
					packed[key] = group
					shape := append([]int64{3 * t.Shape[0]}, t.Shape[1:]...)
					entries = append(entries, floatEntry(key, shape, opts.DType, packedValues(key, group)))
				}
				group[src.part] = t
			}
			continue
		}
		key, shape, err := ldmKey(t, layout, levels, opts.Family)
		if err != nil {
			return nil, err
		}
		entries = append(entries, floatEntry(key, shape, opts.DType, t.Values))
	}
	return entries, nil
}

// openCLIPPrefix is the checkpoint prefix of net's keys when net is an
// OpenCLIP encoder in family's layout, else "".
func openCLIPPrefix(net string, fam Family) string {
	switch {
	case net == "text_encoder" && fam == FamilySD2:
		return sd2Text
	case net == "text_encoder_2" && fam == FamilySDXL:
		return sdxlText2
	}
	return ""
}

// transposedValues are t's [rows, cols] values as [cols, rows].
func transposedValues(t Tensor) func() ([]float32, error) {
	return func() ([]float32, error) {
		vals, err := t.Values()
		if err != nil {
			return nil, err
		}
		if int64(len(vals)) != t.Shape[0]*t.Shape[1] {
			return nil, fmt.Errorf("%w: %s %s: %d values for %v", ErrShape, t.Net, t.Name, len(vals), t.Shape)
		}
		return transposed(vals, t.Shape[0], t.Shape[1]), nil
	}
}

// packedValues concatenates q, k and v along the first axis.
func packedValues(key string, group *[3]Tensor) func() ([]float32, error) {
	return func() ([]float32, error) {
		var out []float32
		for i, t := range group {
			if t.Values == nil {
				return nil, fmt.Errorf("%w: %s lacks its %c part", ErrMapping, key, "qkv"[i])
			}
			vals, err := t.Values()
			if err != nil {
				return nil, err
			}
			out = append(out, vals...)
		}
		return out, nil
	}
}

// floatEntry is a tensor whose float32 values are stored as dt.
func floatEntry(key string, shape []int64, dt safetensors.DType, values func() ([]float32, error)) safetensors.Entry {
	return safetensors.Entry{Name: key, DType: dt, Shape: shape, Data: func(w io.Writer) error {
		vals, err := values()
		if err != nil {
			return err
		}
		buf, err := safetensors.EncodeFloat32(vals, dt)
		if err != nil {
			return err
		}
		_, err = w.Write(buf)
		return err
	}}
}

// ldmKey is the checkpoint key and shape of a graph tensor that is not in
// an OpenCLIP encoder.
func ldmKey(t Tensor, l unetLayout, vaeLevels int, fam Family) (string, []int64, error) {
	switch t.Net {
	case "unet":
		key, err := unetSource(t.Name, l)
		return unetPrefix + key, t.Shape, err
	case "text_encoder":
		if fam == FamilySDXL {
			return sdxlText1 + t.Name, t.Shape, nil
		}
		return sd1Text + t.Name, t.Shape, nil
	case "vae_decoder", "vae_encoder":
		src, err := vaeSource(t.Name, vaeLevels)
		shape := t.Shape
		if src.conv1x1 && len(shape) == 2 {
			shape = append(slices.Clone(shape), 1, 1)
		}
		return vaePrefix + src.key, shape, err
	}
	return "", nil, fmt.Errorf("%w: unknown network %q", ErrMapping, t.Net)
}

// layoutFromNames reads the UNet layout and VAE depth off the names.
func layoutFromNames(tensors []Tensor) (unetLayout, int) {
	l := unetLayout{upAttn: map[int]bool{}}
	vaeLevels := map[int]bool{}
	index := func(s, prefix string) (int, bool) {
		rest, ok := strings.CutPrefix(s, prefix)
		if !ok {
			return 0, false
		}
		n, _, _ := strings.Cut(rest, ".")
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	for _, t := range tensors {
		switch t.Net {
		case "unet":
			if j, ok := index(t.Name, "down_blocks.0.resnets."); ok {
				l.layers = max(l.layers, j+1)
			}
			if i, ok := index(t.Name, "up_blocks."); ok && strings.Contains(t.Name, ".attentions.") {
				l.upAttn[i] = true
			}
		case "vae_decoder":
			if i, ok := index(t.Name, "decoder.up_blocks."); ok {
				vaeLevels[i] = true
			}
		}
	}
	return l, len(vaeLevels)
}
