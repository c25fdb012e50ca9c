package convert_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/convert"
	"github.com/sdgate/sdgate/convert/safetensors"
	"github.com/sdgate/sdgate/models/synth"
)

// TestRoundTrip: synth's weights written as an LDM checkpoint and
// imported give the very files synth writes, every tensor used.
func TestRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts synth.Options
		dt   safetensors.DType
	}{
		{"fp32", synth.Options{Preset: "tiny", Seed: 3}, safetensors.F32},
		{"fp16", synth.Options{Preset: "tiny", Seed: 4, FP16: true}, safetensors.F16},
		{"inpaint external", synth.Options{Preset: "tiny", Seed: 5, Inpaint: true, ExternalData: true}, safetensors.F32},
		{"sd2 layout", synth.Options{Preset: "tiny-sd2", Seed: 6, FP16: true}, safetensors.F16},
		{"sdxl", synth.Options{Preset: "sdxl-tiny", Seed: 7, FP16: true}, safetensors.F16},
		{"sdxl fp32 inpaint fused", synth.Options{Preset: "sdxl-tiny", Seed: 8, Inpaint: true, FusedAttention: true}, safetensors.F32},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeLDM(t, tc.opts, tc.dt)
			ck, err := convert.OpenCheckpoint(path, convert.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer ck.Close()
			fam, pred := convert.Family(synth.Family(tc.opts.Preset)), convert.PredictEpsilon
			if fam == convert.FamilySD2 {
				pred = convert.PredictV
			}
			if ck.Family != fam || ck.Inpaint != tc.opts.Inpaint || ck.Prediction != pred || ck.EMA {
				t.Errorf("detected %+v", ck.Info)
			}
			root := t.TempDir()
			want, got := filepath.Join(root, "synth"), filepath.Join(root, "import")
			if _, err := synth.Write(context.Background(), want, tc.opts, nil); err != nil {
				t.Fatal(err)
			}
			imp := tc.opts
			imp.Weights = ck
			if _, err := synth.Write(context.Background(), got, imp, nil); err != nil {
				t.Fatal(err)
			}
			if unused := ck.Unused(); len(unused) != 0 {
				t.Errorf("%d tensors unused, first %v", len(unused), unused[0])
			}
			wf, gf := folderFiles(t, want), folderFiles(t, got)
			if len(wf) != len(gf) {
				t.Fatalf("%d files, want %d", len(gf), len(wf))
			}
			for name, data := range wf {
				if !bytes.Equal(data, gf[name]) {
					t.Errorf("%s differs", name)
				}
			}
		})
	}
}

func TestMissingTensorNamed(t *testing.T) {
	opts := synth.Options{Preset: "tiny"}
	const gone = "model.diffusion_model.input_blocks.1.1.proj_in.weight"
	path := rewrite(t, writeLDM(t, opts, safetensors.F32), nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		if info.Name == gone {
			return nil
		}
		return keep(info, vals)
	})
	ck, err := convert.OpenCheckpoint(path, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	opts.Weights = ck
	_, err = synth.Write(context.Background(), filepath.Join(t.TempDir(), "m"), opts, nil)
	if !errors.Is(err, synth.ErrWeights) || !errors.Is(err, convert.ErrMissing) || !strings.Contains(err.Error(), gone) {
		t.Errorf("err %v, want ErrMissing naming %s", err, gone)
	}
}

func TestWrongShapeNamed(t *testing.T) {
	opts := synth.Options{Preset: "tiny"}
	const key = "first_stage_model.decoder.conv_out.bias"
	path := rewrite(t, writeLDM(t, opts, safetensors.F32), nil, func(info safetensors.Info, vals []float32) []safetensors.Entry {
		if info.Name == key {
			return []safetensors.Entry{safetensors.Float32Entry(key, safetensors.F32, []int64{4}, []float32{1, 2, 3, 4})}
		}
		return keep(info, vals)
	})
	ck, err := convert.OpenCheckpoint(path, convert.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ck.Close()
	if err := ck.Check("vae_decoder", "decoder.conv_out.bias", []int64{3}); !errors.Is(err, convert.ErrShape) || !strings.Contains(err.Error(), key) {
		t.Errorf("err %v", err)
	}
}
