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
	Family     Family            // FamilySD1 (CLIP text encoder keys) or FamilySD2 (OpenCLIP's)
	Prediction string            // recorded as modelspec.prediction_type when set
	Metadata   map[string]string
}

// WriteLDM writes tensors as a single-file checkpoint in the LDM layout:
// the file a trainer would publish, with the key names OpenCheckpoint
// reads (SD 2's q, k and v packed into OpenCLIP's in_proj). Tensors are
// produced one at a time.
func WriteLDM(w io.Writer, tensors []Tensor, opts WriteOptions) error {
	layout, levels := layoutFromNames(tensors)
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
	var entries []safetensors.Entry
	packed := map[string]*[3]Tensor{} // OpenCLIP in_proj key -> q, k, v
	for _, t := range tensors {
		if t.Net == "text_encoder" && opts.Family == FamilySD2 {
			src, err := openCLIPSource(t.Name)
			if err != nil {
				return err
			}
			if src.part < 0 {
				entries = append(entries, floatEntry(sd2Text+src.key, t.Shape, opts.DType, t.Values))
				continue
			}
			group := packed[src.key]
			if group == nil {
				group = &[3]Tensor{}
				packed[src.key] = group
				shape := append([]int64{3 * t.Shape[0]}, t.Shape[1:]...)
				entries = append(entries, floatEntry(sd2Text+src.key, shape, opts.DType, packedValues(src.key, group)))
			}
			group[src.part] = t
			continue
		}
		key, shape, err := ldmKey(t, layout, levels)
		if err != nil {
			return err
		}
		entries = append(entries, floatEntry(key, shape, opts.DType, t.Values))
	}
	return safetensors.Write(w, md, entries)
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

// ldmKey is the checkpoint key and shape of a graph tensor (SD 1 text
// encoder keys).
func ldmKey(t Tensor, l unetLayout, vaeLevels int) (string, []int64, error) {
	switch t.Net {
	case "unet":
		key, err := unetSource(t.Name, l)
		return unetPrefix + key, t.Shape, err
	case "text_encoder":
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
