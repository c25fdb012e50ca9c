package sd_test

import (
	"context"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sdgate/sdgate/internal/ortest"
	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

// The runtime is process-wide; tests share one and load models on it.
var (
	sharedRT     *sd.Runtime
	sharedRTErr  error
	sharedRTOnce sync.Once
)

func runtimeForTest(t testing.TB) *sd.Runtime {
	t.Helper()
	lib := ortest.Library(t)
	sharedRTOnce.Do(func() {
		sharedRT, sharedRTErr = sd.NewRuntime(sd.RuntimeOptions{Library: lib, Device: "cpu"})
	})
	if sharedRTErr != nil {
		t.Fatal(sharedRTErr)
	}
	return sharedRT
}

// writeModel writes a tiny synthetic model once per distinct options.
var (
	modelsMu sync.Mutex
	models   = map[synth.Options]string{}
)

func writeModel(t testing.TB, opts synth.Options) string {
	t.Helper()
	if opts.Preset == "" {
		opts.Preset = "tiny"
	}
	modelsMu.Lock()
	defer modelsMu.Unlock()
	if dir, ok := models[opts]; ok {
		return dir
	}
	root, err := os.MkdirTemp("", "sdgate-sd-test-")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "model")
	if _, err := synth.Write(context.Background(), dir, opts, nil); err != nil {
		t.Fatalf("synth.Write(%+v): %v", opts, err)
	}
	models[opts] = dir
	return dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, dir := range models {
		os.RemoveAll(filepath.Dir(dir))
	}
	os.Exit(code)
}

func loadModel(t testing.TB, opts synth.Options) *sd.Model {
	t.Helper()
	rt := runtimeForTest(t)
	m, err := sd.Load(context.Background(), rt, writeModel(t, opts), sd.LoadOptions{})
	if err != nil {
		t.Fatalf("Load(%+v): %v", opts, err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// Every exporter variant loads and every network runs with outputs of the
// right shape and finite values.
func TestEveryVariantLoadsAndRuns(t *testing.T) {
	variants := map[string]synth.Options{
		"fp32":               {},
		"fp16":               {FP16: true},
		"int64-ids":          {InputIDs64: true},
		"timestep-int64":     {Timestep: "int64-batch"},
		"timestep-scalar":    {Timestep: "float-scalar"},
		"fp16-scalar":        {FP16: true, Timestep: "float-scalar"},
		"fp16-int64":         {FP16: true, Timestep: "int64-batch", InputIDs64: true},
		"latent-parameters":  {LatentParameters: true},
		"fp16-latent-params": {FP16: true, LatentParameters: true},
		"external-data":      {ExternalData: true},
		"fp16-external":      {FP16: true, ExternalData: true, Timestep: "float-scalar"},
		"inpaint":            {Inpaint: true},
		"no-vae-encoder":     {NoVAEEncoder: true},
		"lcm":                {LCM: true},
		"fp16-lcm-scalar":    {LCM: true, FP16: true, Timestep: "float-scalar"},
	}
	for name, opts := range variants {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			if m.Spec.FP16 != opts.FP16 || m.Spec.Inpainting != opts.Inpaint || m.Spec.CanEncode == opts.NoVAEEncoder || m.Spec.LCM != opts.LCM {
				t.Errorf("spec %+v does not match %+v", m.Spec, opts)
			}
			for _, n := range sd.NetworkOutputs(t, m) {
				if len(n.Values) != n.Want {
					t.Errorf("%s: %d values, want %d", n.Name, len(n.Values), n.Want)
				}
				for i, v := range n.Values {
					if math.IsNaN(float64(v)) || math.IsInf(float64(v), 0) {
						t.Fatalf("%s: value %d is %g", n.Name, i, v)
					}
				}
			}
		})
	}
}

func TestBrokenFolders(t *testing.T) {
	good := writeModel(t, synth.Options{})
	cases := []struct {
		name   string
		break_ func(dir string)
		want   []string // all must appear in the error
	}{
		{"missing unet", func(d string) { os.RemoveAll(filepath.Join(d, "unet")) }, []string{"unet/model.onnx", "missing"}},
		{"missing model_index", func(d string) { os.Remove(filepath.Join(d, "model_index.json")) }, []string{"model_index.json"}},
		{"bad scheduler json", func(d string) {
			os.WriteFile(filepath.Join(d, "scheduler", "scheduler_config.json"), []byte("{"), 0o644)
		}, []string{"scheduler_config.json"}},
		{"sdxl without its second encoder", func(d string) {
			os.WriteFile(filepath.Join(d, "model_index.json"), []byte(`{"_class_name":"ORTStableDiffusionXLPipeline"}`), 0o644)
		}, []string{"tokenizer_2"}},
		{"sdxl refiner", func(d string) {
			os.WriteFile(filepath.Join(d, "model_index.json"), []byte(`{"_class_name":"StableDiffusionXLImg2ImgPipeline","requires_aesthetics_score":true,"text_encoder":[null,null]}`), 0o644)
		}, []string{"model_index.json", "SDXL refiner"}},
		{"sd3", func(d string) {
			os.WriteFile(filepath.Join(d, "model_index.json"), []byte(`{"_class_name":"StableDiffusion3Pipeline"}`), 0o644)
		}, []string{"model_index.json", "SD3 family"}},
		{"flux", func(d string) {
			os.WriteFile(filepath.Join(d, "model_index.json"), []byte(`{"_class_name":"FluxPipeline","transformer":["diffusers","FluxTransformer2DModel"]}`), 0o644)
		}, []string{"model_index.json", "Flux family"}},
		{"garbage onnx", func(d string) {
			os.WriteFile(filepath.Join(d, "vae_decoder", "model.onnx"), []byte("not onnx"), 0o644)
		}, []string{"vae_decoder/model.onnx", "cannot read"}},
		{"networks swapped", func(d string) {
			te, vd := filepath.Join(d, "text_encoder", "model.onnx"), filepath.Join(d, "vae_decoder", "model.onnx")
			a, _ := os.ReadFile(te)
			b, _ := os.ReadFile(vd)
			os.WriteFile(te, b, 0o644)
			os.WriteFile(vd, a, 0o644)
		}, []string{"text_encoder/model.onnx", "input_ids", "latent_sample"}},
		{"missing tokenizer", func(d string) { os.RemoveAll(filepath.Join(d, "tokenizer")) }, []string{"tokenizer"}},
	}
	rt := runtimeForTest(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "m")
			copyDir(t, good, dir)
			c.break_(dir)
			_, err := sd.Load(context.Background(), rt, dir, sd.LoadOptions{})
			if !errors.Is(err, sd.ErrBadModel) {
				t.Fatalf("err = %v, want ErrBadModel", err)
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
			if _, err := sd.Open(runtimeForTest(t), dir); err == nil {
				t.Error("Open accepted the broken folder")
			}
		})
	}
}

func copyDir(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestOpenThenLoadAndUnload(t *testing.T) {
	dir := writeModel(t, synth.Options{})
	m, err := sd.Open(runtimeForTest(t), dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Loaded() || m.Spec.NativeWidth != 64 || m.Spec.DefaultSteps != 4 {
		t.Fatalf("opened model: loaded=%v spec=%+v", m.Loaded(), m.Spec)
	}
	req := sd.Request{Prompt: "x", Steps: 1, Seed: 1, HasSeed: true}
	if err := m.Validate(req); err != nil {
		t.Errorf("Validate before Load: %v", err)
	}
	if _, err := m.Generate(context.Background(), req); !errors.Is(err, sd.ErrNotLoaded) {
		t.Fatalf("Generate before Load: %v, want ErrNotLoaded", err)
	}
	rt := runtimeForTest(t)
	for round := range 2 { // unload and load again
		if err := m.Load(context.Background(), rt, sd.LoadOptions{}); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if _, err := m.Generate(context.Background(), req); err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		if err := m.Close(); err != nil || m.Loaded() {
			t.Fatalf("round %d: Close: %v, loaded=%v", round, err, m.Loaded())
		}
	}
}
