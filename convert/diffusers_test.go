package convert_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// writeDiffusers lays opts' weights out as a diffusers folder: unet/
// (sharded when shards > 1), text_encoder/, vae/ (with pre-0.14 attention
// names when oldAttn) and synth's tokenizer/.
func writeDiffusers(t *testing.T, opts synth.Options, shards int, oldAttn bool) string {
	t.Helper()
	root := t.TempDir()
	ref := filepath.Join(root, "ref")
	if _, err := synth.Write(context.Background(), ref, opts, nil); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "pipeline")
	byComp := map[string][]safetensors.Entry{}
	for _, tn := range synthTensors(t, opts) {
		comp := map[string]string{"unet": "unet", "text_encoder": "text_encoder", "text_encoder_2": "text_encoder_2", "vae_decoder": "vae", "vae_encoder": "vae"}[tn.Net]
		vals, err := tn.Values()
		if err != nil {
			t.Fatal(err)
		}
		name := tn.Name
		if oldAttn && comp == "vae" {
			for _, r := range [][2]string{{".to_q.", ".query."}, {".to_k.", ".key."}, {".to_v.", ".value."}, {".to_out.0.", ".proj_attn."}} {
				name = strings.Replace(name, r[0], r[1], 1)
			}
		}
		byComp[comp] = append(byComp[comp], safetensors.Float32Entry(name, safetensors.F16, tn.Shape, vals))
	}
	write := func(path string, entries []safetensors.Entry) {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if err := safetensors.Write(f, nil, entries); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "text_encoder", "model.safetensors"), byComp["text_encoder"])
	if te2 := byComp["text_encoder_2"]; te2 != nil {
		write(filepath.Join(dir, "text_encoder_2", "model.safetensors"), te2)
	}
	write(filepath.Join(dir, "vae", "diffusion_pytorch_model.safetensors"), byComp["vae"])
	unet := byComp["unet"]
	if shards <= 1 {
		write(filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors"), unet)
	} else {
		weightMap := map[string]string{}
		per := (len(unet) + shards - 1) / shards
		for s := range shards {
			part := unet[s*per : min((s+1)*per, len(unet))]
			name := fmt.Sprintf("diffusion_pytorch_model-%05d-of-%05d.safetensors", s+1, shards)
			for _, e := range part {
				weightMap[e.Name] = name
			}
			write(filepath.Join(dir, "unet", name), part)
		}
		var js bytes.Buffer
		js.WriteString(`{"metadata":{},"weight_map":{`)
		first := true
		for k, v := range weightMap {
			if !first {
				js.WriteString(",")
			}
			first = false
			fmt.Fprintf(&js, "%q:%q", k, v)
		}
		js.WriteString("}}")
		if err := os.WriteFile(filepath.Join(dir, "unet", "diffusion_pytorch_model.safetensors.index.json"), js.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.CopyFS(filepath.Join(dir, "tokenizer"), os.DirFS(filepath.Join(ref, "tokenizer"))); err != nil {
		t.Fatal(err)
	}
	return dir
}

// TestDiffusersFolder: a diffusers folder of synth's weights imports to
// synth's very files, its tokenizer's merges taken from the folder.
func TestDiffusersFolder(t *testing.T) {
	sd1 := synth.Options{Preset: "tiny", Seed: 6, FP16: true}
	for _, tc := range []struct {
		name    string
		opts    synth.Options
		shards  int
		oldAttn bool
	}{
		{"single", sd1, 1, false},
		{"sharded old attention names", sd1, 3, true},
		{"sdxl", synth.Options{Preset: "sdxl-tiny", Seed: 9, FP16: true}, 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			dir := writeDiffusers(t, opts, tc.shards, tc.oldAttn)
			d, err := convert.OpenDiffusers(dir, convert.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			fam := convert.Family(synth.Family(opts.Preset))
			if d.Family != fam || d.Prediction != convert.PredictEpsilon || d.Merges == "" {
				t.Fatalf("detected %+v, merges %q", d.Info, d.Merges)
			}
			want, got := filepath.Join(t.TempDir(), "want"), filepath.Join(t.TempDir(), "got")
			if _, err := synth.Write(context.Background(), want, opts, nil); err != nil {
				t.Fatal(err)
			}
			imp := opts
			imp.Weights, imp.ClipBPE = d, d.Merges
			if _, err := synth.Write(context.Background(), got, imp, nil); err != nil {
				t.Fatal(err)
			}
			if u := d.Unused(); len(u) != 0 {
				t.Errorf("unused: %v", u)
			}
			wf, gf := folderFiles(t, want), folderFiles(t, got)
			for name, data := range wf {
				if !bytes.Equal(data, gf[name]) {
					t.Errorf("%s differs", name)
				}
			}
		})
	}
}

func TestDiffusersRefusals(t *testing.T) {
	dir := t.TempDir()
	for _, comp := range []string{"unet", "text_encoder", "vae"} {
		os.MkdirAll(filepath.Join(dir, comp), 0o755)
	}
	os.WriteFile(filepath.Join(dir, "unet", "diffusion_pytorch_model.bin"), []byte{0x80, 0x02, 0}, 0o644)
	if _, err := convert.OpenDiffusers(dir, convert.Options{}); !errors.Is(err, safetensors.ErrPickle) {
		t.Errorf("pickled unet: %v", err)
	}
	if _, err := convert.OpenDiffusers(t.TempDir(), convert.Options{}); !errors.Is(err, convert.ErrUnsupported) {
		t.Errorf("empty folder: %v", err)
	}

	// SDXL: a refiner (no text_encoder/), and a base without text_encoder_2/.
	xl := writeDiffusers(t, synth.Options{Preset: "sdxl-tiny", Seed: 1}, 1, false)
	if _, err := convert.OpenDiffusers(xl, convert.Options{Family: convert.FamilySD1}); !errors.Is(err, convert.ErrUnsupported) || !strings.Contains(err.Error(), "folder is sdxl") {
		t.Errorf("--family sd15 on SDXL: %v", err)
	}
	refiner := t.TempDir()
	for _, comp := range []string{"unet", "text_encoder_2", "vae"} {
		if err := os.CopyFS(filepath.Join(refiner, comp), os.DirFS(filepath.Join(xl, comp))); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := convert.OpenDiffusers(refiner, convert.Options{}); !errors.Is(err, convert.ErrSDXL) || !strings.Contains(err.Error(), "refiner") {
		t.Errorf("refiner: %v", err)
	}
	if err := os.RemoveAll(filepath.Join(xl, "text_encoder_2")); err != nil {
		t.Fatal(err)
	}
	if _, err := convert.OpenDiffusers(xl, convert.Options{}); !errors.Is(err, convert.ErrUnsupported) || !strings.Contains(err.Error(), "text_encoder_2") {
		t.Errorf("SDXL without text_encoder_2: %v", err)
	}
}
