package server

import (
	"image"
	"image/color"
	"testing"

	"github.com/sdgate/sdgate/compat"
)

// FuzzPixelLimits: fit never exceeds the bounds nor returns an empty
// image, and check accepts exactly what is within them.
func FuzzPixelLimits(f *testing.F) {
	f.Add(4096, 4096, 10, int64(3840*2160), int64(10*1536*1024))
	f.Add(1, 4096, 1, int64(100), int64(0))
	f.Add(4096, 1, 16, int64(0), int64(1000))
	f.Add(96, 48, 10, int64(0), int64(10240))
	f.Fuzz(func(t *testing.T, w, h, n int, img, req int64) {
		if w < 1 || h < 1 || w > compat.MaxSide || h > compat.MaxSide || n < 1 || n > 16 || img < 0 || req < 0 {
			return
		}
		l := PixelLimits{Image: img, Request: req}
		fw, fh := l.fit(w, h, n)
		if fw < 1 || fh < 1 || fw > w || fh > h {
			t.Fatalf("fit(%d, %d, %d) = %dx%d", w, h, n, fw, fh)
		}
		px := int64(fw) * int64(fh)
		tiny := fw == 1 || fh == 1 // a one-pixel side cannot shrink further
		if !tiny && ((img > 0 && px > img) || (req > 0 && int64(n)*px > req)) {
			t.Fatalf("fit(%d, %d, %d) = %dx%d exceeds %+v", w, h, n, fw, fh, l)
		}
		within := (img == 0 || int64(w)*int64(h) <= img) && (req == 0 || int64(n)*int64(w)*int64(h) <= req)
		if err := l.check(w, h, n, false); (err == nil) != within {
			t.Fatalf("check(%d, %d, %d) = %v, within = %v", w, h, n, err, within)
		}
	})
}

func TestDecodeCost(t *testing.T) {
	tests := []struct {
		name      string
		img, mask image.Config
		want      int64
	}{
		{"16-bit RGBA, no mask", image.Config{ColorModel: color.NRGBA64Model, Width: 4096, Height: 4096}, image.Config{}, 4096 * 4096 * 13},
		{"8-bit RGBA with mask", image.Config{ColorModel: color.NRGBAModel, Width: 10, Height: 10},
			image.Config{ColorModel: color.NRGBAModel, Width: 10, Height: 10}, 100*9 + 100*5},
		{"paletted", image.Config{ColorModel: color.Palette{color.Black}, Width: 10, Height: 10}, image.Config{}, 100 * 6},
	}
	for _, tt := range tests {
		if got := decodeCost(tt.img, tt.mask); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
}
