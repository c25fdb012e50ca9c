package convert_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// synthTensors are the parameters of the synth folder opts describes.
func synthTensors(t testing.TB, opts synth.Options) []convert.Tensor {
	t.Helper()
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]convert.Tensor, len(params))
	for i, p := range params {
		out[i] = convert.Tensor{Net: p.Net, Name: p.Name, Shape: p.Shape, Values: p.Values}
	}
	return out
}

// writeLDM writes opts' weights as an LDM checkpoint and returns its path.
func writeLDM(t testing.TB, opts synth.Options, dt safetensors.DType) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "model.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	wo := convert.WriteOptions{DType: dt, Family: convert.Family(synth.Family(opts.Preset)), Metadata: map[string]string{"format": "pt"}}
	if wo.Family == convert.FamilySD2 {
		wo.Prediction = convert.PredictV
	}
	if err := convert.WriteLDM(f, synthTensors(t, opts), wo); err != nil {
		t.Fatal(err)
	}
	return path
}

// rewrite copies the safetensors file src to a new file, letting edit
// replace each tensor by any entries (none drops it), then add extra ones.
func rewrite(t testing.TB, src string, md map[string]string, edit func(info safetensors.Info, vals []float32) []safetensors.Entry, extra ...safetensors.Entry) string {
	t.Helper()
	in, err := safetensors.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var entries []safetensors.Entry
	for _, info := range in.Tensors() {
		vals, err := in.Float32(info.Name)
		if err != nil {
			t.Fatal(err)
		}
		entries = append(entries, edit(info, vals)...)
	}
	entries = append(entries, extra...)
	path := filepath.Join(t.TempDir(), "edited.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := safetensors.Write(f, md, entries); err != nil {
		t.Fatal(err)
	}
	return path
}

// standaloneVAE writes the checkpoint's VAE as a standalone LDM VAE file
// (no prefix), every value passed through f.
func standaloneVAE(t testing.TB, ckpt string, f func(float32) float32) string {
	t.Helper()
	return rewrite(t, ckpt, nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		rest, ok := strings.CutPrefix(info.Name, "first_stage_model.")
		if !ok {
			return nil
		}
		for i, v := range vals {
			vals[i] = f(v)
		}
		return []safetensors.Entry{safetensors.Float32Entry(rest, safetensors.F32, info.Shape, vals)}
	})
}

// keep re-emits a tensor unchanged (as F32).
func keep(info safetensors.Info, vals []float32) []safetensors.Entry {
	return []safetensors.Entry{safetensors.Float32Entry(info.Name, safetensors.F32, info.Shape, vals)}
}

// folderSums maps each file of dir to its bytes.
func folderFiles(t testing.TB, dir string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		rel, _ := filepath.Rel(dir, path)
		files[filepath.ToSlash(rel)] = data
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
