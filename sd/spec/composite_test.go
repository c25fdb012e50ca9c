package spec

import (
	"image"
	"image/color"
	"testing"
)

func TestCompositeKeepsUnmaskedPixelsExactly(t *testing.T) {
	const w, h = 5, 3
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	for i := range dst.Pix {
		dst.Pix[i] = 7
	}
	rgba := image.NewRGBA(image.Rect(0, 0, w, h))
	nrgba := image.NewNRGBA(image.Rect(0, 0, w, h))
	mask := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			c := color.RGBA{uint8(10 * x), uint8(20 * y), uint8(x + y), 255}
			rgba.SetRGBA(x, y, c)
			nrgba.Set(x, y, c)
			if x >= 3 {
				mask.SetGray(x, y, color.Gray{Y: 200}) // repaint the right columns
			}
		}
	}
	for name, keep := range map[string]image.Image{"rgba": rgba, "nrgba": nrgba} {
		out := image.NewRGBA(dst.Rect)
		copy(out.Pix, dst.Pix)
		Composite(out, keep, mask)
		for y := range h {
			for x := range w {
				got := out.RGBAAt(x, y)
				want := rgba.RGBAAt(x, y)
				if x >= 3 {
					want = color.RGBA{7, 7, 7, 7}
				}
				if got != want {
					t.Errorf("%s: pixel (%d,%d) = %v, want %v", name, x, y, got, want)
				}
			}
		}
	}
}
