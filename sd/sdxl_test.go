package sd_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	ort "github.com/yalue/onnxruntime_go"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/sd/clip"
	"github.com/sdgate/sdgate/sd/spec"
)

// sdxl-tiny's widths: CLIP-L-like 32, bigG-like 48, projection 48.
const (
	xlW1, xlW2, xlPooled = 32, 48, 48
	xlTokens             = 77
)

func TestSDXLSpec(t *testing.T) {
	m := loadModel(t, synth.Options{Preset: "sdxl-tiny"})
	s := m.Spec
	if s.Family != spec.FamilySDXL || s.NativeWidth != 128 || s.NativeHeight != 128 {
		t.Errorf("family %q native %dx%d, want sdxl 128x128", s.Family, s.NativeWidth, s.NativeHeight)
	}
	if s.ScalingFactor != 0.13025 {
		t.Errorf("scaling factor %v, want SDXL's 0.13025 from vae_decoder/config.json", s.ScalingFactor)
	}
	if s.DefaultGuidance != 5 || s.Scheduler != "EulerDiscreteScheduler" {
		t.Errorf("default guidance %v scheduler %s, want 5 and EulerDiscreteScheduler", s.DefaultGuidance, s.Scheduler)
	}
	// 1/8 of SDXL's buckets (1152x896 -> 144x112 and so on), with transposes.
	want := sizes(128, 128, 144, 112, 112, 144, 152, 104, 104, 152, 168, 96, 96, 168)
	if !slices.Equal(s.Buckets, want) {
		t.Errorf("buckets %v, want %v", s.Buckets, want)
	}
	for _, tc := range []struct {
		opts   synth.Options
		family string
	}{{synth.Options{}, spec.FamilySD1}, {synth.Options{Preset: "tiny-sd2"}, spec.FamilySD2}} {
		if f := loadModel(t, tc.opts).Spec.Family; f != tc.family {
			t.Errorf("%s: family %q, want %q", tc.opts.Preset, f, tc.family)
		}
	}
}

// TestSDXLAddedConditioning checks what the UNet receives against values
// worked out by hand and against the encoders run on their own.
//
// time_ids: diffusers' _get_add_time_ids with no crop and no explicit
// original size is (height, width) + (0, 0) + (height, width) of the image
// generated, so a 152-wide, 104-high image has [104 152 0 0 104 152] on
// every row, uncond rows included.
//
// Hidden states: each row is, token by token, text_encoder's
// hidden_states.1 (32 wide; the penultimate of its 2 layers) followed by
// text_encoder_2's hidden_states.1 (48 wide); text_embeds is
// text_encoder_2's text_embeds. With force_zeros_for_empty_prompt and no
// negative prompt, the uncond rows are all zero.
func TestSDXLAddedConditioning(t *testing.T) {
	opts := synth.Options{Preset: "sdxl-tiny"}
	m := loadModel(t, opts)
	const prompt = "a red fox in the snow"
	req := sd.Request{Prompt: prompt, Width: 152, Height: 104, N: 2, Guidance: 5, HasGuidance: true}
	hidden, pooled, ids, err := sd.XLConditioning(m, req)
	if err != nil {
		t.Fatal(err)
	}
	const batch = 4 // 2 uncond + 2 cond
	rowIDs := []float32{104, 152, 0, 0, 104, 152}
	if len(ids) != batch*6 {
		t.Fatalf("%d time ids, want %d", len(ids), batch*6)
	}
	for r := range batch {
		if !slices.Equal(ids[r*6:(r+1)*6], rowIDs) {
			t.Errorf("time_ids row %d = %v, want %v", r, ids[r*6:(r+1)*6], rowIDs)
		}
	}
	per := xlTokens * (xlW1 + xlW2)
	if len(hidden) != batch*per || len(pooled) != batch*xlPooled {
		t.Fatalf("hidden %d pooled %d values, want %d and %d", len(hidden), len(pooled), batch*per, batch*xlPooled)
	}
	for i, v := range hidden[:2*per] {
		if v != 0 {
			t.Fatalf("uncond hidden[%d] = %v, want 0 (force_zeros_for_empty_prompt)", i, v)
		}
	}
	for i, v := range pooled[:2*xlPooled] {
		if v != 0 {
			t.Fatalf("uncond text_embeds[%d] = %v, want 0", i, v)
		}
	}

	dir := writeModel(t, opts)
	h1 := runEncoder(t, dir, "tokenizer", "text_encoder", prompt, "hidden_states.1", xlTokens*xlW1)
	last1 := runEncoder(t, dir, "tokenizer", "text_encoder", prompt, "last_hidden_state", xlTokens*xlW1)
	h2 := runEncoder(t, dir, "tokenizer_2", "text_encoder_2", prompt, "hidden_states.1", xlTokens*xlW2)
	te := runEncoder(t, dir, "tokenizer_2", "text_encoder_2", prompt, "text_embeds", xlPooled)
	if slices.Equal(h1, last1) {
		t.Fatal("hidden_states.1 equals last_hidden_state: the check could not tell them apart")
	}
	for r := 2; r < batch; r++ {
		row := hidden[r*per : (r+1)*per]
		for tok := range xlTokens {
			got := row[tok*(xlW1+xlW2) : (tok+1)*(xlW1+xlW2)]
			if !slices.Equal(got[:xlW1], h1[tok*xlW1:(tok+1)*xlW1]) || !slices.Equal(got[xlW1:], h2[tok*xlW2:(tok+1)*xlW2]) {
				t.Fatalf("row %d token %d is not text_encoder's penultimate state then text_encoder_2's", r, tok)
			}
		}
		if !slices.Equal(pooled[r*xlPooled:(r+1)*xlPooled], te) {
			t.Fatalf("text_embeds row %d differs from text_encoder_2's text_embeds", r)
		}
	}

	// text_embeds by hand: text_projection (torch layout [out, in], drawn
	// from the folder's seed) times the final state at the first EOS token,
	// the position CLIP pools from (the prompt's start, words, end: its
	// unpadded length minus one).
	lastTE2 := runEncoder(t, dir, "tokenizer_2", "text_encoder_2", prompt, "last_hidden_state", xlTokens*xlW2)
	tok2, err := clip.Load(filepath.Join(dir, "tokenizer_2"))
	if err != nil {
		t.Fatal(err)
	}
	eos := len(tok2.Encode(prompt)) - 1
	proj := param(t, opts, "text_encoder_2", "text_projection.weight")
	for o := range xlPooled {
		var want float64
		for i := range xlW2 {
			want += float64(proj[o*xlW2+i]) * float64(lastTE2[eos*xlW2+i])
		}
		if d := math.Abs(float64(te[o]) - want); d > 1e-4*(1+math.Abs(want)) {
			t.Fatalf("text_embeds[%d] = %v, by hand %v (EOS at %d)", o, te[o], want, eos)
		}
	}

	// A negative prompt, even a blank one, is encoded rather than zeroed.
	req.NegativePrompt = "blurry"
	hidden, _, _, err = sd.XLConditioning(m, req)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Equal(hidden[:per], make([]float32, per)) {
		t.Error("negative prompt was zeroed")
	}
	// Without guidance there is no uncond row at all.
	hidden, pooled, ids, err = sd.XLConditioning(m, sd.Request{Prompt: prompt, Width: 128, Height: 128, Guidance: 1, HasGuidance: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(hidden) != per || len(pooled) != xlPooled || !slices.Equal(ids, []float32{128, 128, 0, 0, 128, 128}) {
		t.Errorf("guidance 1: %d hidden, %d pooled, ids %v; want one cond row", len(hidden), len(pooled), ids)
	}
}

// param is one parameter of the synthetic folder opts writes.
func param(t *testing.T, opts synth.Options, net, name string) []float32 {
	t.Helper()
	params, err := synth.Params(opts)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range params {
		if p.Net == net && p.Name == name {
			v, err := p.Values()
			if err != nil {
				t.Fatal(err)
			}
			return v
		}
	}
	t.Fatalf("no parameter %s/%s", net, name)
	return nil
}

// runEncoder runs one text encoder of dir on its own session and returns
// one output for prompt.
func runEncoder(t *testing.T, dir, tokDir, net, prompt, output string, size int) []float32 {
	t.Helper()
	runtimeForTest(t)
	tok, err := clip.Load(filepath.Join(dir, tokDir))
	if err != nil {
		t.Fatal(err)
	}
	enc, err := tok.EncodePadded(prompt)
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int32, len(enc.IDs))
	for i, id := range enc.IDs {
		ids[i] = int32(id)
	}
	in, err := ort.NewTensor(ort.NewShape(1, int64(len(ids))), ids)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Destroy()
	shape := ort.NewShape(1, int64(len(ids)), int64(size/len(ids)))
	if output == "text_embeds" {
		shape = ort.NewShape(1, int64(size))
	}
	out, err := ort.NewEmptyTensor[float32](shape)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Destroy()
	s, err := ort.NewDynamicAdvancedSession(filepath.Join(dir, net, "model.onnx"), []string{"input_ids"}, []string{output}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()
	if err := s.Run([]ort.Value{in}, []ort.Value{out}); err != nil {
		t.Fatal(err)
	}
	return append([]float32(nil), out.GetData()...)
}

func TestSDXLGenerate(t *testing.T) {
	m := loadModel(t, synth.Options{Preset: "sdxl-tiny"})
	req := sd.Request{Prompt: "a lighthouse", Width: 152, Height: 104, Steps: 3, Seed: 7, HasSeed: true, N: 2}
	a, b := generate(t, m, req), generate(t, m, req)
	if a.Images[0].Image.Rect.Dx() != 152 || a.Images[0].Image.Rect.Dy() != 104 {
		t.Fatalf("image %v, want 152x104", a.Images[0].Image.Rect)
	}
	if string(a.Images[1].Image.Pix) != string(b.Images[1].Image.Pix) {
		t.Error("SDXL generation is not reproducible")
	}
	if string(a.Images[0].Image.Pix) == string(a.Images[1].Image.Pix) {
		t.Error("two seeds gave one image")
	}
	if a.Scheduler != "euler" || a.StepsRun != 3 {
		t.Errorf("scheduler %s, %d steps; want euler, 3", a.Scheduler, a.StepsRun)
	}
	neg := req
	neg.NegativePrompt = "fog"
	if c := generate(t, m, neg); string(c.Images[0].Image.Pix) == string(a.Images[0].Image.Pix) {
		t.Error("the negative prompt changed nothing")
	}
}

func TestTurbo(t *testing.T) {
	for _, preset := range []string{"sdxl-tiny", "tiny-sd2"} {
		t.Run(preset, func(t *testing.T) {
			m := loadModel(t, synth.Options{Preset: preset, Turbo: true})
			s := m.Spec
			if s.DefaultSteps != 1 || s.DefaultGuidance != 0 || s.Scheduler != "EulerAncestralDiscreteScheduler" {
				t.Fatalf("turbo spec: %d steps, guidance %v, %s; want 1, 0, EulerAncestralDiscreteScheduler", s.DefaultSteps, s.DefaultGuidance, s.Scheduler)
			}
			res := generate(t, m, sd.Request{Prompt: "a cat", Seed: 1, HasSeed: true})
			if res.StepsRun != 1 || res.Guidance != 0 || res.Scheduler != "euler_a" {
				t.Errorf("ran %d steps at guidance %v with %s", res.StepsRun, res.Guidance, res.Scheduler)
			}
		})
	}
}

func TestSDXLEdits(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"base":          {Preset: "sdxl-tiny"},
		"inpainting-9c": {Preset: "sdxl-tiny", Inpaint: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			const w, h = 128, 128
			init, mask := photo(w, h), centreMask(w, h)
			img := generate(t, m, sd.Request{Prompt: "a painting", InitImage: init, Strength: 0.6, HasStrength: true, Steps: 4, Seed: 3, HasSeed: true})
			if string(img.Images[0].Image.Pix) == string(init.Pix) {
				t.Error("img2img returned the image unchanged")
			}
			res := generate(t, m, sd.Request{Prompt: "a door", InitImage: init, Mask: mask, Steps: 3, Seed: 1, HasSeed: true})
			out := res.Images[0].Image
			changed := 0
			for y := range h {
				for x := range w {
					o, i := out.RGBAAt(x, y), init.RGBAAt(x, y)
					if mask.GrayAt(x, y).Y < 128 && o != i {
						t.Fatalf("kept pixel (%d,%d) changed: %v -> %v", x, y, i, o)
					}
					if mask.GrayAt(x, y).Y >= 128 && o != i {
						changed++
					}
				}
			}
			if changed < w*h/4/2 {
				t.Errorf("only %d of %d masked pixels changed", changed, w*h/4)
			}
			if opts.Inpaint && !m.Spec.Inpainting {
				t.Error("the 9-channel UNet is not seen as inpainting")
			}
		})
	}
}

func TestSDXLCancel(t *testing.T) {
	m := loadModel(t, synth.Options{Preset: "sdxl-tiny"})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := m.Generate(ctx, sd.Request{Prompt: "x", Steps: 2}); err == nil {
		t.Error("a cancelled generation succeeded")
	}
}

// sizes pairs up w, h, w, h, ...
func sizes(wh ...int) []spec.Size {
	out := make([]spec.Size, 0, len(wh)/2)
	for i := 0; i+1 < len(wh); i += 2 {
		out = append(out, spec.Size{Width: wh[i], Height: wh[i+1]})
	}
	return out
}

// An fp16 SDXL folder whose sdgate.json names an fp32 decoder decodes in
// fp32: the image is the fp32 folder's own decode of the fp16 latents, so
// it differs from the fp16 decoder's and stays finite.
func TestSDXLFP32VAEDecoder(t *testing.T) {
	fp16 := writeModel(t, synth.Options{Preset: "sdxl-tiny", FP16: true})
	fp32 := writeModel(t, synth.Options{Preset: "sdxl-tiny"})
	dir := filepath.Join(t.TempDir(), "m")
	copyDir(t, fp16, dir)
	copyDir(t, filepath.Join(fp32, "vae_decoder"), filepath.Join(dir, "vae_decoder_fp32"))
	manifest := filepath.Join(dir, "sdgate.json")
	setJSONKey(t, manifest, "vae_decoder", "vae_decoder_fp32")
	rt := runtimeForTest(t)
	m, err := sd.Load(context.Background(), rt, dir, sd.LoadOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	var decoder sd.NetworkInfo
	for _, n := range m.Networks() {
		if n.Name == "vae_decoder_fp32" {
			decoder = n
		}
	}
	if len(decoder.Inputs) != 1 || !strings.Contains(decoder.Inputs[0], "_FLOAT[") {
		t.Fatalf("decoder %+v, want the fp32 one", decoder)
	}
	req := sd.Request{Prompt: "a boat", Steps: 2, Seed: 5, HasSeed: true}
	a := generate(t, m, req)
	b := generate(t, loadModel(t, synth.Options{Preset: "sdxl-tiny", FP16: true}), req)
	if string(a.Images[0].Image.Pix) == string(b.Images[0].Image.Pix) {
		t.Error("the fp32 decoder gave the fp16 decoder's pixels")
	}

	for _, bad := range []string{"../vae_decoder", "/tmp", "a/b", ".."} {
		setJSONKey(t, manifest, "vae_decoder", bad)
		if _, err := sd.Open(rt, dir); !errors.Is(err, sd.ErrBadModel) || !strings.Contains(err.Error(), "sdgate.json") {
			t.Errorf("vae_decoder %q: %v, want ErrBadModel naming sdgate.json", bad, err)
		}
	}
	setJSONKey(t, manifest, "vae_decoder", "missing")
	if _, err := sd.Open(rt, dir); !errors.Is(err, sd.ErrBadModel) || !strings.Contains(err.Error(), "missing/model.onnx") {
		t.Errorf("missing decoder folder: %v", err)
	}
}

func setJSONKey(t *testing.T, path, key string, value any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	m[key] = value
	if data, err = json.Marshal(m); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// Every exporter variant synth writes for SD 1.5 loads and runs for SDXL
// too: fp16 with optimum's rank-0 timestep (rewritten at load), int64 ids
// on both encoders, int64 timesteps, latent_parameters encoders.
func TestSDXLExportVariants(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"fp16 scalar timestep int64 ids": {Preset: "sdxl-tiny", FP16: true, Timestep: synth.TimestepFloatScalar, InputIDs64: true},
		"int64 timestep":                 {Preset: "sdxl-tiny", Timestep: synth.TimestepInt64Batch},
		"latent parameters":              {Preset: "sdxl-tiny", LatentParameters: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			req := sd.Request{Prompt: "a kite", Steps: 2, Seed: 2, HasSeed: true}
			if opts.LatentParameters {
				req.InitImage, req.Strength, req.HasStrength = photo(128, 128), 0.5, true
			}
			res := generate(t, m, req)
			if res.Images[0].Image.Rect.Dx() != 128 {
				t.Fatalf("image %v", res.Images[0].Image.Rect)
			}
		})
	}
}
