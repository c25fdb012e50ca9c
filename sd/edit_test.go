package sd_test

import (
	"context"
	"errors"
	"image"
	"image/color"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
)

func photo(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(4 * x), uint8(4 * y), uint8(255 - 2*x), 255})
		}
	}
	return img
}

// centreMask repaints the middle square of a w x h image.
func centreMask(w, h int) *image.Gray {
	m := image.NewGray(image.Rect(0, 0, w, h))
	for y := h / 4; y < 3*h/4; y++ {
		for x := w / 4; x < 3*w/4; x++ {
			m.SetGray(x, y, color.Gray{255})
		}
	}
	return m
}

func TestImageToImage(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"latent_sample":     {},
		"latent_parameters": {LatentParameters: true},
		"fp16":              {FP16: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			init := photo(64, 64)
			req := sd.Request{Prompt: "a painting", InitImage: init, Strength: 0.5, HasStrength: true, Steps: 8, Seed: 3, HasSeed: true, N: 2}
			a, b := generate(t, m, req), generate(t, m, req)
			if string(a.Images[1].Image.Pix) != string(b.Images[1].Image.Pix) {
				t.Error("img2img is not reproducible")
			}
			if string(a.Images[0].Image.Pix) == string(a.Images[1].Image.Pix) {
				t.Error("two seeds gave one image")
			}
			txt := generate(t, m, sd.Request{Prompt: "a painting", Steps: 8, Seed: 3, HasSeed: true})
			if string(txt.Images[0].Image.Pix) == string(a.Images[0].Image.Pix) {
				t.Error("the init image changed nothing")
			}
		})
	}
}

func TestInpaintKeepsUnmaskedPixels(t *testing.T) {
	for name, opts := range map[string]synth.Options{
		"ordinary-unet":   {},
		"inpainting-unet": {Inpaint: true},
	} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			init, mask := photo(64, 64), centreMask(64, 64)
			res := generate(t, m, sd.Request{Prompt: "a door", InitImage: init, Mask: mask, Steps: 4, Seed: 1, HasSeed: true})
			out := res.Images[0].Image
			if out.Rect != init.Rect {
				t.Fatalf("output %v, want %v", out.Rect, init.Rect)
			}
			changed := 0
			for y := 0; y < 64; y++ {
				for x := 0; x < 64; x++ {
					o, i := out.RGBAAt(x, y), init.RGBAAt(x, y)
					if mask.GrayAt(x, y).Y < 128 && o != i {
						t.Fatalf("kept pixel (%d,%d) changed: %v -> %v", x, y, i, o)
					}
					if mask.GrayAt(x, y).Y >= 128 && o != i {
						changed++
					}
				}
			}
			if changed < 32*32/2 {
				t.Errorf("only %d of %d masked pixels changed", changed, 32*32)
			}
		})
	}
}

func TestEditValidation(t *testing.T) {
	m := loadModel(t, synth.Options{})
	noEnc := loadModel(t, synth.Options{NoVAEEncoder: true})
	init := photo(64, 64)
	cases := []struct {
		name  string
		m     *sd.Model
		req   sd.Request
		param string
	}{
		{"strength 0", m, sd.Request{InitImage: init, HasStrength: true}, "strength"},
		{"strength 2", m, sd.Request{InitImage: init, Strength: 2, HasStrength: true}, "strength"},
		{"tiny strength", m, sd.Request{InitImage: init, Strength: 0.01, HasStrength: true, Steps: 4}, "strength"},
		{"mask size", m, sd.Request{InitImage: init, Mask: centreMask(32, 32)}, "mask"},
		{"mask alone", m, sd.Request{Mask: centreMask(64, 64)}, "mask"},
		{"image size", m, sd.Request{InitImage: init, Width: 128, Height: 64}, "image"},
		{"no encoder", noEnc, sd.Request{InitImage: init}, "image"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := c.m.Generate(context.Background(), c.req)
			var pe *sd.ParamError
			if !errors.As(err, &pe) || pe.Param != c.param {
				t.Fatalf("err = %v, want a ParamError for %s", err, c.param)
			}
		})
	}
}
