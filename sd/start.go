package sd

import (
	"fmt"
	"image"
	"math"

	"github.com/sdgate/sdgate/sd/scheduler"
)

// startState is where the denoise loop begins: the latents, the first step,
// and for inpainting what keeps the known region known.
type startState struct {
	latents []float32 // [N,4,h,w]
	step    int       // first step index (0 for text-to-image)
	per     int       // 4*h*w

	// Inpainting on an ordinary UNet: after each step the known region is
	// reset to the image latents noised to the next step's level.
	known     []float32 // image latents x0 [N,4,h,w]
	noise     []float32 // the noise that made latents from known
	keep      []float32 // per latent pixel: 1 = known (keep), 0 = repaint; [h*w]
	extra     []float32 // inpainting UNet: mask + masked-image latents per image
	noisedBuf []float32
}

// start prepares the initial latents: pure noise for text-to-image, the
// encoded InitImage noised to Strength for image-to-image and inpainting.
// Random draws follow diffusers' order per image generator: the latent
// distribution's sample (latent_parameters exports) first, then the noise.
func (m *Model) start(j job, sched scheduler.Scheduler, gens batchNoise, clock *ortClock) (*startState, error) {
	per := int(4 * j.latentH * j.latentW)
	st := &startState{latents: make([]float32, j.N*per), per: per}
	if j.InitImage == nil {
		gens.Randn(st.latents)
		sigma := float32(sched.InitNoiseSigma())
		for i := range st.latents {
			st.latents[i] *= sigma
		}
		return st, nil
	}

	strength := j.Strength
	start, err := scheduler.ImageToImage(sched, strength)
	if err != nil {
		return nil, paramErr("strength", "%v", err)
	}
	st.step = start
	pixels := fromImage(j.InitImage)
	var repaint []bool // per image pixel
	if j.Mask != nil {
		repaint = maskPixels(j.Mask)
	}
	st.noise = make([]float32, len(st.latents))
	if start == 0 && strength >= 1 && m.Spec.Inpainting {
		// diffusers' inpainting pipeline at full strength starts from pure
		// noise and never encodes the image (nor draws its latent sample).
		gens.Randn(st.noise)
		sigma := float32(sched.InitNoiseSigma())
		for i, v := range st.noise {
			st.latents[i] = v * sigma
		}
	} else {
		imgLatents, err := m.encodeImage(pixels, j, gens, clock)
		if err != nil {
			return nil, err
		}
		st.known = imgLatents
		gens.Randn(st.noise)
		sched.AddNoise(st.latents, imgLatents, st.noise, start)
	}

	if repaint == nil && !m.Spec.Inpainting {
		st.known = nil // plain image-to-image: nothing to keep
		return st, nil
	}
	if repaint == nil { // an inpainting UNet without a mask: repaint all
		repaint = make([]bool, len(pixels)/3)
		for i := range repaint {
			repaint[i] = true
		}
	}
	st.keep = latentKeep(repaint, j.Width, j.Height)
	if m.Spec.Inpainting {
		// The UNet sees the mask and the latents of the image with the
		// region to repaint blanked (0 in [-1, 1] pixels, as diffusers does).
		masked := append([]float32(nil), pixels...)
		plane := len(pixels) / 3
		for p, r := range repaint {
			if r {
				masked[p], masked[plane+p], masked[2*plane+p] = 0, 0, 0
			}
		}
		// Like diffusers, the masked image's latents are sampled after the
		// noise, from each image's generator (latent_parameters exports).
		maskedLatents, err := m.encodeImage(masked, j, gens, clock)
		if err != nil {
			return nil, err
		}
		lp := per / 4
		st.extra = make([]float32, 0, j.N*5*lp)
		for i := range j.N {
			for _, k := range st.keep {
				st.extra = append(st.extra, 1-k)
			}
			st.extra = append(st.extra, maskedLatents[i*per:(i+1)*per]...)
		}
		st.known = nil // the UNet itself keeps the known region
		return st, nil
	}
	st.noisedBuf = make([]float32, len(st.latents))
	return st, nil
}

// blendKnown resets the known region after step next-1 (ordinary UNet
// inpainting): to the image latents noised to step next's level, or to the
// clean latents after the last step.
func (st *startState) blendKnown(sched scheduler.Scheduler, next, total int) {
	if st.known == nil {
		return
	}
	target := st.known
	if next < total {
		sched.AddNoise(st.noisedBuf, st.known, st.noise, next)
		target = st.noisedBuf
	}
	plane := len(st.keep)
	for i := range st.latents {
		k := st.keep[i%plane]
		st.latents[i] = k*target[i] + (1-k)*st.latents[i]
	}
}

// maskPixels reads a repaint mask: value >= 128 means repaint.
func maskPixels(mask *image.Gray) []bool {
	b := mask.Bounds()
	out := make([]bool, 0, b.Dx()*b.Dy())
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			out = append(out, mask.GrayAt(x, y).Y >= 128)
		}
	}
	return out
}

// latentKeep downsamples a pixel mask to latent resolution: a latent pixel
// is kept (1) only when none of its 8x8 pixels is to be repainted, so the
// repainted region never starts from the old image at its border. The pixel
// composite after decoding restores every kept pixel exactly anyway.
func latentKeep(repaint []bool, w, h int) []float32 {
	lw, lh := w/8, h/8
	keep := make([]float32, lw*lh)
	for i := range keep {
		keep[i] = 1
	}
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			if repaint[y*w+x] {
				keep[(y/8)*lw+x/8] = 0
			}
		}
	}
	return keep
}

// encodeImage encodes the init image once and gives each of the N images
// its latents x scaling factor; latent_parameters exports sample mean +
// std*noise from each image's generator.
func (m *Model) encodeImage(pixels []float32, j job, gens batchNoise, clock *ortClock) ([]float32, error) {
	raw, err := m.encodeRaw(pixels, j, clock)
	if err != nil {
		return nil, err
	}
	per := int(4 * j.latentH * j.latentW)
	out := make([]float32, j.N*per)
	scale := float32(m.Spec.ScalingFactor)
	for i := range j.N {
		dst := out[i*per : (i+1)*per]
		if m.vaeEncoder.parameters {
			gens[i].Randn(dst)
			mean, logvar := raw[:per], raw[per:2*per]
			for k := range dst {
				lv := math.Min(math.Max(float64(logvar[k]), -30), 20)
				dst[k] = (mean[k] + float32(math.Exp(0.5*lv))*dst[k]) * scale
			}
			continue
		}
		for k, v := range raw[:per] {
			dst[k] = v * scale
		}
	}
	return out, nil
}

func (m *Model) encodeRaw(pixels []float32, j job, clock *ortClock) ([]float32, error) {
	if !m.useEncoder {
		return nil, paramErr("image", "model has no VAE encoder loaded: it cannot start from an image")
	}
	var raw []float32
	err := clock.time(func() (err error) {
		raw, err = m.vaeEncoder.encode(pixels, int64(j.Height), int64(j.Width))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("vae encoder: %w", err)
	}
	return raw, nil
}

// fromImage converts an image to [3,h,w] in [-1, 1], the VAE encoder's
// input (diffusers: x/127.5 - 1 on 8-bit values).
func fromImage(img image.Image) []float32 {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	plane := w * h
	out := make([]float32, 3*plane)
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			r, g, bl, _ := img.At(b.Min.X+x, b.Min.Y+y).RGBA()
			p := y*w + x
			out[p] = float32(r>>8)/127.5 - 1
			out[plane+p] = float32(g>>8)/127.5 - 1
			out[2*plane+p] = float32(bl>>8)/127.5 - 1
		}
	}
	return out
}
