package lora_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/sdgate/sdgate/convert/lora"
	"github.com/sdgate/sdgate/convert/safetensors"
)

// writePeftNoAlpha writes a peft file as peft saves it: lora_A / lora_B,
// no alpha tensors (the strength lives in adapter_config.json).
func writePeftNoAlpha(t *testing.T, path string, ranks map[string]int64) {
	t.Helper()
	var entries []safetensors.Entry
	for mod, r := range ranks {
		down := make([]float32, r*4)
		up := make([]float32, 3*r)
		for i := range down {
			down[i] = float32(i%5) - 2
		}
		for i := range up {
			up[i] = float32(i%3) * 0.5
		}
		entries = append(entries,
			safetensors.Float32Entry("unet."+mod+".lora_A.weight", safetensors.F32, []int64{r, 4}, down),
			safetensors.Float32Entry("unet."+mod+".lora_B.weight", safetensors.F32, []int64{3, r}, up))
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

func alphaOf(t *testing.T, l *lora.LoRA, key string) float32 {
	t.Helper()
	for _, m := range l.Modules {
		if m.Key == key {
			return m.Alpha
		}
	}
	t.Fatalf("no module %q", key)
	return 0
}

func TestPeftConfigAlpha(t *testing.T) {
	ranks := map[string]int64{"down_blocks.0.attn1.to_q": 4, "mid_block.proj_in": 2}
	for _, tc := range []struct {
		name, config  string
		toQ, projIn   float32
		wantErr       error
		adapterLayout bool
	}{
		{name: "none", toQ: 4, projIn: 2},
		{name: "alpha", config: `{"peft_type":"LORA","r":4,"lora_alpha":8,"rank_pattern":{"proj_in":2}}`, toQ: 8, projIn: 8},
		{name: "adapter folder", config: `{"r":4,"lora_alpha":2,"rank_pattern":{"mid_block.proj_in":2},"alpha_pattern":{"proj_in":6}}`,
			toQ: 2, projIn: 6, adapterLayout: true},
		{name: "rslora", config: `{"r":4,"lora_alpha":8,"use_rslora":true,"rank_pattern":{"proj_in":2}}`,
			toQ: float32(8 * math.Sqrt(4)), projIn: float32(8 * math.Sqrt(2))},
		{name: "rank mismatch", config: `{"r":8,"lora_alpha":8}`, wantErr: lora.ErrShape},
		{name: "loha", config: `{"peft_type":"LOHA","r":4,"lora_alpha":8}`, wantErr: lora.ErrLyCORIS},
		{name: "dora", config: `{"r":4,"lora_alpha":8,"use_dora":true}`, wantErr: lora.ErrLyCORIS},
		{name: "bad alpha", config: `{"r":4,"lora_alpha":-1}`, wantErr: lora.ErrFormat},
		{name: "not json", config: `{"r":`, wantErr: lora.ErrFormat},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "style.safetensors")
			if tc.adapterLayout {
				path = filepath.Join(dir, "adapter_model.safetensors")
			}
			writePeftNoAlpha(t, path, ranks)
			if tc.config != "" {
				if err := os.WriteFile(lora.PeftConfigPath(path), []byte(tc.config), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			l, err := lora.Open(path)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("err %v, want %v", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := alphaOf(t, l, "unet.down_blocks.0.attn1.to_q"); got != tc.toQ {
				t.Errorf("to_q alpha %v, want %v", got, tc.toQ)
			}
			if got := alphaOf(t, l, "unet.mid_block.proj_in"); got != tc.projIn {
				t.Errorf("proj_in alpha %v, want %v", got, tc.projIn)
			}
		})
	}
}

// TestPeftConfigKeepsFileAlpha: an alpha tensor in the file wins over the
// config (it is the module's own).
func TestPeftConfigKeepsFileAlpha(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.safetensors")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	err = safetensors.Write(f, nil, []safetensors.Entry{
		safetensors.Float32Entry("unet.a.lora_A.weight", safetensors.F32, []int64{2, 3}, make([]float32, 6)),
		safetensors.Float32Entry("unet.a.lora_B.weight", safetensors.F32, []int64{3, 2}, make([]float32, 6)),
		safetensors.Float32Entry("unet.a.alpha", safetensors.F32, nil, []float32{1}),
	})
	f.Close()
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(lora.PeftConfigPath(path), []byte(`{"r":2,"lora_alpha":16}`), 0o644)
	l, err := lora.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := alphaOf(t, l, "unet.a"); got != 1 {
		t.Errorf("alpha %v, want the file's 1", got)
	}
}

// FuzzParsePeftConfig: configs come with downloads; none panics.
func FuzzParsePeftConfig(f *testing.F) {
	f.Add([]byte(`{"peft_type":"LORA","r":4,"lora_alpha":8,"alpha_pattern":{"to_q":2}}`))
	f.Add([]byte(`{"r":0}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := lora.ParsePeftConfig(data)
		if err == nil && (c.R <= 0 || c.Alpha <= 0) {
			t.Errorf("accepted %+v", c)
		}
	})
}
