package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// synthTensors are the parameters of the folder opts describes, in the
// form convert writes.
func synthTensors(opts synth.Options) ([]convert.Tensor, error) {
	params, err := synth.Params(opts)
	if err != nil {
		return nil, err
	}
	out := make([]convert.Tensor, len(params))
	for i, p := range params {
		out[i] = convert.Tensor{Net: p.Net, Name: p.Name, Shape: p.Shape, Values: p.Values}
	}
	return out, nil
}

// writeSynthCheckpoint writes opts' weights as an LDM checkpoint at path
// (float16 when the folder is), through a temporary file renamed at the end.
func writeSynthCheckpoint(path string, opts synth.Options) error {
	tensors, err := synthTensors(opts)
	if err != nil {
		return err
	}
	dt := safetensors.F32
	if opts.FP16 {
		dt = safetensors.F16
	}
	wo := convert.WriteOptions{
		DType: dt, Family: convert.Family(synth.Family(opts.Preset)), Prediction: opts.Prediction,
		Metadata: map[string]string{"format": "pt", "sdgate.synth": fmt.Sprintf("preset %s, seed %d", opts.Preset, opts.Seed)},
	}
	if wo.Family == convert.FamilySD2 && wo.Prediction == "" {
		wo.Prediction = convert.PredictV // the sd2 presets' default
	}
	return writeFileAtomic(path, func(f *os.File) error { return convert.WriteLDM(f, tensors, wo) })
}

// writeFileAtomic writes path through a temporary file beside it.
func writeFileAtomic(path string, fill func(f *os.File) error) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // after the rename there is nothing to remove
	if err := fill(f); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil { // CreateTemp made it private
		return err
	}
	return os.Rename(f.Name(), path)
}

// loraModules are the layers kohya's sd-scripts adapts by default: the
// UNet's transformer projections and the text encoder's attention and MLP.
var loraModules = []string{".to_q.weight", ".to_k.weight", ".to_v.weight", ".to_out.0.weight", ".proj_in.weight", ".proj_out.weight",
	".ff.net.0.proj.weight", ".ff.net.2.weight", ".q_proj.weight", ".k_proj.weight", ".v_proj.weight", ".out_proj.weight",
	".mlp.fc1.weight", ".mlp.fc2.weight"}

// writeSynthLoRA writes a kohya LoRA of rank for the folder opts describes
// (in kohya's SDXL naming for an SDXL folder)
// and returns its module count. alpha = rank: the LoRA applies at scale 1.
func writeSynthLoRA(path string, opts synth.Options, rank int64) (int, error) {
	params, err := synth.Params(opts)
	if err != nil {
		return 0, err
	}
	var specs []lora.Spec
	var unet []string // every UNet module: kohya's SDXL names number them
	for _, p := range params {
		if m, ok := strings.CutSuffix(p.Name, ".weight"); ok && p.Net == "unet" {
			unet = append(unet, m)
		}
		if p.Net != "unet" && p.Net != "text_encoder" && p.Net != "text_encoder_2" {
			continue
		}
		for _, suffix := range loraModules {
			if strings.HasSuffix(p.Name, suffix) {
				specs = append(specs, lora.Spec{Net: p.Net, Name: p.Name, Shape: p.Shape})
				break
			}
		}
	}
	l, err := lora.Synthesize(specs, rank, float32(rank), opts.Seed^0x10a)
	if err != nil {
		return 0, err
	}
	dt := safetensors.F32
	if opts.FP16 {
		dt = safetensors.F16
	}
	return len(l.Modules), writeFileAtomic(path, func(f *os.File) error {
		if synth.Family(opts.Preset) == synth.FamilySDXL {
			return lora.WriteKohyaSDXL(f, l, dt, unet)
		}
		return lora.WriteKohya(f, l, dt)
	})
}
