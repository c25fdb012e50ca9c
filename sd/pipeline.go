package sd

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/sdgate/sdgate/sd/rng"
	"github.com/sdgate/sdgate/sd/scheduler"
	"github.com/sdgate/sdgate/sd/spec"
)

// Limits on a Request, beyond the per-model defaults (see sd/spec).
const (
	MaxSteps    = spec.MaxSteps
	MaxImages   = spec.MaxImages
	MaxGuidance = spec.MaxGuidance
)

// job is a Request with every default filled in and validated.
type job struct {
	Request
	latentH, latentW int64
	cfg              bool // classifier-free guidance on (guidance > 1)
}

// resolve fills defaults from the model and rejects what is out of range.
func (m *Model) resolve(req Request) (job, error) {
	j := job{Request: req}
	if len(req.LoRAs) > 0 {
		// A model merges LoRAs when it loads (LoadOptions.Rewrite), never
		// per run: silently ignoring them would serve the base model.
		return j, paramErr("loras", "this model merges LoRAs only when it loads: serve it through a LoRA variant")
	}
	if j.N == 0 {
		j.N = 1
	}
	if j.N < 1 || j.N > MaxImages {
		return j, paramErr("n", "must be between 1 and %d, got %d", MaxImages, req.N)
	}
	if j.Width == 0 && j.Height == 0 {
		j.Width, j.Height = m.Spec.NativeWidth, m.Spec.NativeHeight
		if j.InitImage != nil {
			j.Width, j.Height = j.InitImage.Bounds().Dx(), j.InitImage.Bounds().Dy()
		}
	}
	lo, hi := m.Spec.SideLimits()
	for _, side := range []int{j.Width, j.Height} {
		if side%8 != 0 || side < lo || side > hi {
			return j, paramErr("size", "%dx%d: each side must be a multiple of 8 between %d and %d for this model", j.Width, j.Height, lo, hi)
		}
	}
	if j.Steps == 0 {
		j.Steps = m.Spec.DefaultSteps
	}
	if j.Steps < 1 || j.Steps > MaxSteps {
		return j, paramErr("steps", "must be between 1 and %d, got %d", MaxSteps, j.Steps)
	}
	if j.PartialImages < 0 || j.PartialImages > spec.MaxPartialImages {
		return j, paramErr("partial_images", "must be between 0 and %d, got %d", spec.MaxPartialImages, j.PartialImages)
	}
	if !j.HasGuidance {
		j.Guidance, j.HasGuidance = m.Spec.DefaultGuidance, true
	}
	if j.Guidance < 0 || j.Guidance > MaxGuidance || j.Guidance != j.Guidance {
		return j, paramErr("guidance_scale", "must be between 0 and %d, got %g", MaxGuidance, req.Guidance)
	}
	if j.Scheduler == "" && m.Spec.Scheduler != m.schedConfig.ClassName {
		j.Scheduler = m.Spec.Scheduler // the folder's default_scheduler
	}
	if _, err := scheduler.New(j.Scheduler, m.schedConfig, j.Steps); err != nil {
		return j, paramErr("scheduler", "%v", err)
	}
	if err := m.resolveImage(&j); err != nil {
		return j, err
	}
	if !j.HasSeed {
		j.Seed, j.HasSeed = spec.RandomSeed(), true
	}
	j.latentH, j.latentW = int64(j.Height/8), int64(j.Width/8)
	// diffusers: guidance <= 1 means no unconditional pass; LCM UNets take
	// guidance as an embedding instead and never run one.
	j.cfg = j.Guidance > 1 && m.unet.condDim == 0
	return j, nil
}

// resolveImage checks the image-to-image fields and fills the strength.
func (m *Model) resolveImage(j *job) error {
	if j.InitImage == nil {
		if j.Mask != nil {
			return paramErr("mask", "a mask needs an image")
		}
		return nil
	}
	if !m.Spec.CanEncode {
		return paramErr("image", "this model has no VAE encoder, so it cannot start from an image")
	}
	if b := j.InitImage.Bounds(); b.Dx() != j.Width || b.Dy() != j.Height {
		return paramErr("image", "image is %dx%d but the request generates %dx%d", b.Dx(), b.Dy(), j.Width, j.Height)
	}
	if j.Mask != nil {
		if b := j.Mask.Bounds(); b.Dx() != j.Width || b.Dy() != j.Height {
			return paramErr("mask", "mask is %dx%d but the image is %dx%d", b.Dx(), b.Dy(), j.Width, j.Height)
		}
	}
	if !j.HasStrength {
		j.Strength, j.HasStrength = DefaultStrength, true
		if j.Mask != nil || m.Spec.Inpainting {
			j.Strength = 1
		}
	}
	if !(j.Strength > 0 && j.Strength <= 1) {
		return paramErr("strength", "must be greater than 0 and at most 1, got %g", j.Strength)
	}
	if int(float64(j.Steps)*j.Strength) < 1 {
		return paramErr("strength", "%g of %d steps leaves no step to run", j.Strength, j.Steps)
	}
	return nil
}

// Validate reports whether req is acceptable for this model without running it.
func (m *Model) Validate(req Request) error {
	_, err := m.resolve(req)
	return err
}

// Generate runs text-to-image like diffusers' StableDiffusionPipeline: N
// images in one UNet batch (2N with guidance), image i seeded with Seed+i.
// ctx is checked every step: a cancelled request stops within one step.
func (m *Model) Generate(ctx context.Context, req Request) (Result, error) {
	start := time.Now()
	j, err := m.resolve(req)
	if err != nil {
		return Result{}, err
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.loaded {
		return Result{}, ErrNotLoaded
	}
	var clock ortClock
	cond, err := m.conditioning(j, &clock)
	if err != nil {
		return Result{}, err
	}
	latents, stepsRun, err := m.denoise(ctx, j, cond, &clock)
	if err != nil {
		// What ran before a cancel is still metered.
		return Result{Width: j.Width, Height: j.Height, Steps: j.Steps, StepsRun: stepsRun,
			ORT: clock.total, Total: time.Since(start)}, err
	}
	images, err := m.decode(j, latents, &clock)
	if err != nil {
		return Result{}, err
	}
	res := Result{
		Images: images, Prompt: cond.kept, Truncated: cond.truncated,
		Width: j.Width, Height: j.Height, Steps: j.Steps, StepsRun: stepsRun, Guidance: j.Guidance,
		Scheduler: cond.scheduler, ORT: clock.total, Total: time.Since(start),
	}
	return res, nil
}

// ortClock sums the time spent inside ONNX Runtime calls.
type ortClock struct{ total time.Duration }

func (c *ortClock) time(f func() error) error {
	t := time.Now()
	err := f()
	c.total += time.Since(t)
	return err
}

// conditioning is the text side of a job: the UNet's encoder_hidden_states
// for the whole batch, [uncond x N, cond x N] with guidance, else [cond x N].
type conditioning struct {
	hidden    []float32
	tokens    int64
	kept      string
	truncated bool
	scheduler string
	added     *addedCond // SDXL only
}

func (m *Model) conditioning(j job, clock *ortClock) (conditioning, error) {
	if m.xl != nil {
		return m.xlConditioning(j, clock)
	}
	text, err := m.promptWindows(j)
	if err != nil {
		return conditioning{}, err
	}
	rows := text.rows
	te := m.textEncoder
	ids := make([]int32, 0, len(rows)*int(te.length))
	for _, r := range rows {
		for _, id := range r {
			ids = append(ids, int32(id))
		}
	}
	encoded := make([]float32, len(rows)*int(te.length*te.hidden))
	if err := clock.time(func() error { return te.encode(ids, len(rows), encoded) }); err != nil {
		return conditioning{}, err
	}
	// A prompt's windows are consecutive rows, so its embeddings joined on
	// the token axis are one slice. Repeat each prompt N times: the batch
	// is [negative x N, prompt x N].
	per := text.windows * int(te.length*te.hidden)
	prompts := len(rows) / text.windows
	hidden := make([]float32, 0, prompts*j.N*per)
	for p := range prompts {
		for range j.N {
			hidden = append(hidden, encoded[p*per:(p+1)*per]...)
		}
	}
	sched, _ := scheduler.New(j.Scheduler, m.schedConfig, j.Steps)
	return conditioning{hidden: hidden, tokens: int64(text.windows) * te.length, kept: text.kept,
		truncated: text.truncated, scheduler: sched.Name()}, nil
}

// batchNoise draws noise for a batch the way diffusers does with a list of
// generators: image i's slice comes from image i's generator.
type batchNoise []*rng.Generator

func (b batchNoise) Randn(dst []float32) {
	per := len(dst) / len(b)
	for i, g := range b {
		g.Randn(dst[i*per : (i+1)*per])
	}
}

// denoise runs the scheduler loop and returns the final latents [N,4,h,w]
// and the number of steps it ran.
func (m *Model) denoise(ctx context.Context, j job, cond conditioning, clock *ortClock) ([]float32, int, error) {
	sched, err := scheduler.New(j.Scheduler, m.schedConfig, j.Steps)
	if err != nil {
		return nil, 0, paramErr("scheduler", "%v", err)
	}
	gens := make(batchNoise, j.N)
	for i := range gens {
		gens[i] = rng.New(j.Seed + uint64(i))
	}
	var noise scheduler.Noise = gens // boxed once, not once per step
	st, err := m.start(j, sched, gens, clock)
	if err != nil {
		return nil, 0, err
	}
	latents := st.latents

	batch := j.N
	if j.cfg {
		batch = 2 * j.N
	}
	run, err := m.unet.prepare(batch, j.latentH, j.latentW, cond.hidden, cond.tokens, guidanceEmbedding(j.Guidance, m.unet.condDim, batch), cond.added)
	if err != nil {
		return nil, 0, err
	}
	defer run.close()
	in := newUNetInput(run.sampleBuffer(), batch, int(m.unet.channels), st.per, st.extra)
	scaled := make([]float32, len(latents))
	guided := make([]float32, len(latents))
	timesteps := sched.Timesteps()
	pv := newPreviewer(j, len(timesteps)-st.step)
	for i := st.step; i < len(timesteps); i++ {
		if ctx.Err() != nil {
			// The cause tells a client's cancel from a worker shutdown.
			return nil, i - st.step, context.Cause(ctx)
		}
		sched.ScaleModelInput(scaled, latents, i)
		in.fill(scaled)
		began := time.Now()
		out, err := run.predict(timesteps[i])
		clock.total += time.Since(began)
		if err != nil {
			return nil, 0, err
		}
		guide(guided, out, j.cfg, float32(j.Guidance))
		if err := m.preview(pv, j, sched, i, i+1-st.step, guided, latents, clock); err != nil {
			return nil, i - st.step, err
		}
		if err := sched.Step(i, guided, latents, noise); err != nil {
			return nil, 0, fmt.Errorf("scheduler step %d: %w", i, err)
		}
		st.blendKnown(sched, i+1, len(timesteps))
		if j.Progress != nil {
			j.Progress(i+1-st.step, len(timesteps)-st.step)
		}
	}
	return latents, len(timesteps) - st.step, nil
}

// guidanceEmbedding is LCM's timestep_cond: a sinusoidal embedding of
// (guidance - 1) * 1000, sines then cosines (diffusers'
// get_guidance_scale_embedding), the same row for every batch entry.
// nil when the UNet takes none.
func guidanceEmbedding(guidance float64, dim int64, batch int) []float32 {
	if dim <= 0 {
		return nil
	}
	half := dim / 2
	w := float32((guidance - 1) * 1000)
	step := math.Log(10000) / float64(half-1)
	row := make([]float32, dim) // an odd width ends in one zero of padding
	for i := range half {
		x := w * float32(math.Exp(float64(i)*-step))
		row[i] = float32(math.Sin(float64(x)))
		row[half+i] = float32(math.Cos(float64(x)))
	}
	out := make([]float32, 0, int64(batch)*dim)
	for range batch {
		out = append(out, row...)
	}
	return out
}

// unetInput lays the scaled latents out as the UNet's sample input: the
// batch twice with guidance, and for inpainting UNets 5 extra channels per
// image (mask, masked-image latents) after the 4 latent channels.
type unetInput struct {
	buf      []float32
	batch    int
	channels int
	per      int // 4 * h * w
}

// newUNetInput writes the constant extra channels once. extra holds, per
// image, the mask plane then 4 masked-image latent planes (5*h*w values); nil
// means text-to-image on an inpainting UNet: everything is to be painted
// (mask 1) and nothing is known (latents 0).
func newUNetInput(buf []float32, batch, channels, per int, extra []float32) *unetInput {
	u := &unetInput{buf: buf, batch: batch, channels: channels, per: per}
	if channels == 9 {
		plane := per / 4
		n := batch
		if extra != nil {
			n = len(extra) / (5 * plane)
		}
		for b := 0; b < batch; b++ {
			dst := buf[b*9*plane+4*plane : (b+1)*9*plane]
			if extra != nil {
				i := b % n
				copy(dst, extra[i*5*plane:(i+1)*5*plane])
				continue
			}
			for k := range plane {
				dst[k] = 1
			}
			clear(dst[plane:])
		}
	}
	return u
}

// fill copies the scaled latents [N,4,h,w] into every batch slot (twice
// over with guidance: slot b takes image b mod N).
func (u *unetInput) fill(scaled []float32) {
	stride := u.channels * u.per / 4
	n := len(scaled) / u.per
	for b := 0; b < u.batch; b++ {
		src := scaled[(b%n)*u.per : (b%n+1)*u.per]
		copy(u.buf[b*stride:b*stride+u.per], src)
	}
}

// guide applies classifier-free guidance: uncond + g*(cond-uncond), with the
// UNet output laid out [uncond x N, cond x N]. Without guidance it copies.
func guide(dst, out []float32, cfg bool, g float32) {
	if !cfg {
		copy(dst, out[:len(dst)])
		return
	}
	n := len(dst)
	uncond, cond := out[:n], out[n:2*n]
	for i := range dst {
		dst[i] = uncond[i] + g*(cond[i]-uncond[i])
	}
}

// decode turns latents into RGBA images, one VAE call per image to bound
// memory at large sizes.
func (m *Model) decode(j job, latents []float32, clock *ortClock) ([]Image, error) {
	per := int(4 * j.latentH * j.latentW)
	scaled := make([]float32, per)
	pixels := make([]float32, 3*j.Width*j.Height)
	inv := float32(1 / m.Spec.ScalingFactor)
	images := make([]Image, j.N)
	for i := range images {
		for k, v := range latents[i*per : (i+1)*per] {
			scaled[k] = v * inv
		}
		if err := clock.time(func() error { return m.vaeDecoder.decode(scaled, j.latentH, j.latentW, pixels) }); err != nil {
			return nil, err
		}
		img := toRGBA(pixels, j.Width, j.Height)
		if j.Mask != nil {
			spec.Composite(img, j.InitImage, j.Mask)
		}
		images[i] = Image{Image: img, Seed: j.Seed + uint64(i)}
	}
	return images, nil
}
