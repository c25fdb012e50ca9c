package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/sdgate/sdgate/convert"
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
	md := map[string]string{"format": "pt", "sdgate.synth": fmt.Sprintf("preset %s, seed %d", opts.Preset, opts.Seed)}
	return writeFileAtomic(path, func(f *os.File) error { return convert.WriteLDM(f, tensors, dt, md) })
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
