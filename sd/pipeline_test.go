package sd_test

import (
	"bytes"
	"context"
	"errors"
	"image"
	"strings"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

func generate(t testing.TB, m *sd.Model, req sd.Request) sd.Result {
	t.Helper()
	res, err := m.Generate(context.Background(), req)
	if err != nil {
		t.Fatalf("Generate(%+v): %v", req, err)
	}
	return res
}

func pngBytes(t testing.TB, res sd.Result, i int) []byte {
	t.Helper()
	var buf bytes.Buffer
	p := &sd.PNGParams{Prompt: res.Prompt, Steps: res.Steps, Scheduler: res.Scheduler, Guidance: res.Guidance,
		Seed: res.Images[i].Seed, Width: res.Width, Height: res.Height, Model: "tiny"}
	if err := sd.EncodePNG(&buf, res.Images[i].Image, p); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func TestSeedsReproduce(t *testing.T) {
	m := loadModel(t, synth.Options{})
	base := sd.Request{Prompt: "a lighthouse at dusk", Seed: 7, HasSeed: true, Steps: 4}
	a, b := generate(t, m, base), generate(t, m, base)
	if !bytes.Equal(pngBytes(t, a, 0), pngBytes(t, b, 0)) {
		t.Error("same request gave different PNGs")
	}
	other := base
	other.Seed = 8
	if c := generate(t, m, other); bytes.Equal(a.Images[0].Image.Pix, c.Images[0].Image.Pix) {
		t.Error("another seed gave the same image")
	}
	three := base
	three.N = 3
	batch := generate(t, m, three)
	if len(batch.Images) != 3 {
		t.Fatalf("n=3 gave %d images", len(batch.Images))
	}
	for i, img := range batch.Images {
		if img.Seed != 7+uint64(i) {
			t.Errorf("image %d has seed %d, want %d", i, img.Seed, 7+i)
		}
	}
	alone := base
	alone.Seed = 9
	single := generate(t, m, alone)
	if !bytes.Equal(batch.Images[2].Image.Pix, single.Images[0].Image.Pix) {
		t.Error("image 3 of n=3 with seed 7 differs from n=1 with seed 9")
	}
	if bytes.Equal(batch.Images[0].Image.Pix, batch.Images[1].Image.Pix) {
		t.Error("images of one batch are equal")
	}
}

func TestNoSeedDrawsOneAndReportsIt(t *testing.T) {
	m := loadModel(t, synth.Options{})
	res := generate(t, m, sd.Request{Prompt: "x", Steps: 2})
	again := generate(t, m, sd.Request{Prompt: "x", Steps: 2, Seed: res.Images[0].Seed, HasSeed: true})
	if !bytes.Equal(res.Images[0].Image.Pix, again.Images[0].Image.Pix) {
		t.Error("the reported seed does not reproduce the image")
	}
}

func TestEverySchedulerRuns(t *testing.T) {
	m := loadModel(t, synth.Options{})
	seen := map[string]string{}
	for _, name := range []string{"", "ddim", "euler", "euler_a", "dpmpp_2m", "dpmpp_2m_karras", "lcm", "pndm"} {
		t.Run("sched="+name, func(t *testing.T) {
			res := generate(t, m, sd.Request{Prompt: "a cat", Scheduler: name, Steps: 5, Seed: 1, HasSeed: true})
			if name == "" && res.Scheduler != "pndm" {
				t.Errorf("default scheduler %q, want the model's own (pndm)", res.Scheduler)
			}
			img := res.Images[0].Image
			if img.Rect != image.Rect(0, 0, 64, 64) {
				t.Errorf("image is %v", img.Rect)
			}
			seen[name] = string(img.Pix)
		})
	}
	if seen["euler"] == seen["ddim"] || seen["euler_a"] == seen["euler"] {
		t.Error("different schedulers gave identical images")
	}
}

func TestGuidance(t *testing.T) {
	m := loadModel(t, synth.Options{})
	req := func(g float64) sd.Request {
		return sd.Request{Prompt: "a cat", NegativePrompt: "a dog", Guidance: g, HasGuidance: true, Steps: 3, Seed: 3, HasSeed: true}
	}
	// guidance <= 1 skips the unconditional pass, as diffusers does: the
	// negative prompt then plays no part.
	one, half := generate(t, m, req(1)), generate(t, m, req(0.5))
	if !bytes.Equal(one.Images[0].Image.Pix, half.Images[0].Image.Pix) {
		t.Error("guidance 1 and 0.5 differ; both should skip guidance")
	}
	if strong := generate(t, m, req(7.5)); bytes.Equal(strong.Images[0].Image.Pix, one.Images[0].Image.Pix) {
		t.Error("guidance 7.5 changed nothing")
	}
}

func TestSizes(t *testing.T) {
	m := loadModel(t, synth.Options{})
	// 88x48 gives an 11x6 latent: odd sides must survive the UNet's
	// down- and up-sampling as in diffusers.
	for _, size := range [][2]int{{128, 64}, {88, 48}, {8, 256}} {
		res := generate(t, m, sd.Request{Prompt: "wide", Width: size[0], Height: size[1], Steps: 2, N: 2})
		for _, img := range res.Images {
			if img.Image.Rect.Dx() != size[0] || img.Image.Rect.Dy() != size[1] {
				t.Errorf("image is %v, want %dx%d", img.Image.Rect, size[0], size[1])
			}
		}
	}
}

func TestValidation(t *testing.T) {
	m := loadModel(t, synth.Options{})
	cases := []struct {
		req   sd.Request
		param string
	}{
		{sd.Request{Steps: 151}, "steps"},
		{sd.Request{Steps: -1}, "steps"},
		{sd.Request{Width: 100, Height: 64}, "size"},
		{sd.Request{Width: 264, Height: 64}, "size"}, // tiny: 4x its native 64 at most
		{sd.Request{Width: 0, Height: 64}, "size"},
		{sd.Request{Guidance: 31, HasGuidance: true}, "guidance_scale"},
		{sd.Request{Guidance: -1, HasGuidance: true}, "guidance_scale"},
		{sd.Request{Scheduler: "heun++"}, "scheduler"},
		{sd.Request{N: 17}, "n"},
	}
	for _, c := range cases {
		t.Run(c.param, func(t *testing.T) {
			_, err := m.Generate(context.Background(), c.req)
			var pe *sd.ParamError
			if !errors.As(err, &pe) || pe.Param != c.param || !errors.Is(err, sd.ErrInvalidRequest) {
				t.Fatalf("err = %v, want a ParamError for %s", err, c.param)
			}
			if m.Validate(c.req) == nil {
				t.Error("Validate accepted it")
			}
		})
	}
}

func TestLongPromptIsTruncatedAndReported(t *testing.T) {
	m := loadModel(t, synth.Options{})
	// Five tokens a phrase: past sd.MaxPromptChunks windows of 75.
	long := strings.Repeat("a lighthouse on a cliff ", 15*sd.MaxPromptChunks+5)
	res := generate(t, m, sd.Request{Prompt: long, Steps: 1})
	if !res.Truncated || len(res.Prompt) >= len(long) || !strings.HasPrefix(long, res.Prompt) {
		t.Errorf("truncated=%v kept %d of %d chars: %q", res.Truncated, len(res.Prompt), len(long), res.Prompt)
	}
	short := generate(t, m, sd.Request{Prompt: "A Lighthouse", Steps: 1})
	if short.Truncated || short.Prompt != "a lighthouse" {
		t.Errorf("short prompt: truncated=%v kept %q", short.Truncated, short.Prompt)
	}
}

// A prompt past 75 tokens is encoded in 75-token windows whose embeddings
// are joined: all of it conditions the image, the negative prompt gets as
// many windows, and revised_prompt is the whole prompt.
func TestLongPromptChunks(t *testing.T) {
	m := loadModel(t, synth.Options{})
	words := func(w string, n int) string { return strings.TrimSpace(strings.Repeat(w+" ", n)) }
	if m.Tokens("a b") != 4 {
		t.Fatalf("the test vocabulary encodes %q as %d tokens, want a and b one each", "a b", m.Tokens("a b"))
	}
	first := words("a", 75)              // one full window
	long := first + " " + words("b", 75) // two: the second says something else
	for _, tt := range []struct {
		prompt, negative string
		windows          int
	}{
		{"a cat", "", 1}, {first, "", 1}, {first + " b", "", 2}, {long, "", 2}, {"a", long, 2},
		{long, long + " " + long, 4}, {words("b", 300), "", 4},
	} {
		windows, rows, tokens := sd.PromptWindows(t, m, tt.prompt, tt.negative)
		if windows != tt.windows || rows != 2*tt.windows || tokens != int64(77*tt.windows) {
			t.Errorf("%d+%d chars: %d windows, %d rows, %d tokens; want %d windows", len(tt.prompt), len(tt.negative), windows, rows, tokens, tt.windows)
		}
	}
	res := generate(t, m, sd.Request{Prompt: long, Steps: 2, Seed: 3, HasSeed: true})
	if res.Truncated || res.Prompt != long {
		t.Errorf("truncated=%v, kept %d of %d chars", res.Truncated, len(res.Prompt), len(long))
	}
	cut := generate(t, m, sd.Request{Prompt: first, Steps: 2, Seed: 3, HasSeed: true})
	if bytes.Equal(pngBytes(t, res, 0), pngBytes(t, cut, 0)) {
		t.Error("the second window changed nothing: the prompt's tail does not condition the image")
	}
	again := generate(t, m, sd.Request{Prompt: long, Steps: 2, Seed: 3, HasSeed: true})
	if !bytes.Equal(pngBytes(t, res, 0), pngBytes(t, again, 0)) {
		t.Error("a chunked prompt does not reproduce")
	}
	withNeg := generate(t, m, sd.Request{Prompt: "a", NegativePrompt: long, Steps: 1, Guidance: 7, HasGuidance: true})
	if len(withNeg.Images) != 1 {
		t.Errorf("%d images", len(withNeg.Images))
	}
}

func TestCancelStopsWithinOneStep(t *testing.T) {
	m := loadModel(t, synth.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	steps := 0
	_, err := m.Generate(ctx, sd.Request{Prompt: "x", Steps: 50, Progress: func(step, total int) {
		steps = step
		if step == 3 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if steps != 3 {
		t.Errorf("ran %d steps after cancelling at step 3", steps)
	}
}

func TestEveryVariantGenerates(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"fp16-scalar": {FP16: true, Timestep: "float-scalar"},
		"int64":       {Timestep: "int64-batch", InputIDs64: true},
		"inpaint":     {Inpaint: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			res := generate(t, m, sd.Request{Prompt: "a cat", Steps: 2, N: 2})
			if len(res.Images) != 2 || res.ORT <= 0 || res.Total < res.ORT {
				t.Errorf("images %d, ort %v, total %v", len(res.Images), res.ORT, res.Total)
			}
		})
	}
}

// An LCM model: LCMScheduler by default, guidance through timestep_cond
// (it changes the image), and no unconditional pass (the negative prompt,
// which only that pass reads, changes nothing).
func TestLCMModel(t *testing.T) {
	m := loadModel(t, synth.Options{LCM: true})
	if !m.Spec.LCM || m.Spec.DefaultSteps != 4 {
		t.Fatalf("spec %+v", m.Spec)
	}
	req := sd.Request{Prompt: "a cat", Seed: 2, HasSeed: true}
	base := generate(t, m, req)
	if base.Scheduler != "lcm" || base.Steps != 4 {
		t.Errorf("scheduler %q, steps %d", base.Scheduler, base.Steps)
	}
	neg := req
	neg.NegativePrompt = "a dog"
	if got := generate(t, m, neg); !bytes.Equal(got.Images[0].Image.Pix, base.Images[0].Image.Pix) {
		t.Error("the negative prompt changed an LCM image: an unconditional pass ran")
	}
	other := req
	other.Guidance, other.HasGuidance = 2, true
	if got := generate(t, m, other); bytes.Equal(got.Images[0].Image.Pix, base.Images[0].Image.Pix) {
		t.Error("guidance did not reach the UNet's timestep_cond")
	}
}
