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

// WriteLDM writes tensors (an SD 1.x model) as a single-file checkpoint in
// the LDM layout, stored as dt: the file a trainer would publish, with the
// key names OpenCheckpoint reads. Tensors are produced one at a time.
func WriteLDM(w io.Writer, tensors []Tensor, dt safetensors.DType, metadata map[string]string) error {
	layout, levels := layoutFromNames(tensors)
	entries := make([]safetensors.Entry, 0, len(tensors))
	for _, t := range tensors {
		key, shape, err := ldmKey(t, layout, levels)
		if err != nil {
			return err
		}
		values := t.Values
		entries = append(entries, safetensors.Entry{Name: key, DType: dt, Shape: shape, Data: func(w io.Writer) error {
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
		}})
	}
	return safetensors.Write(w, metadata, entries)
}

// ldmKey is the checkpoint key and shape of a graph tensor.
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
