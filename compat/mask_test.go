package compat

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

func encodePNG(t testing.TB, img image.Image) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// holeImage is w x h, opaque except a fully transparent rectangle hole
// and a half-transparent pixel at (0, 0), which is kept.
func holeImage(w, h int, hole image.Rectangle) *image.NRGBA {
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if (image.Point{x, y}).In(hole) {
				a = 0
			}
			img.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 7, a})
		}
	}
	img.SetNRGBA(0, 0, color.NRGBA{1, 2, 3, 128})
	return img
}

// checkRegion compares a mask with the hole it should mark.
func checkRegion(t *testing.T, mask *image.Gray, w, h int, hole image.Rectangle) {
	t.Helper()
	if mask.Rect != image.Rect(0, 0, w, h) {
		t.Fatalf("mask bounds %v, want %dx%d at the origin", mask.Rect, w, h)
	}
	for y := range h {
		for x := range w {
			want := uint8(MaskKeep)
			if (image.Point{x, y}).In(hole) {
				want = MaskRepaint
			}
			if got := mask.GrayAt(x, y).Y; got != want {
				t.Fatalf("mask at %d,%d = %d, want %d", x, y, got, want)
			}
		}
	}
}

func TestDecodeMask(t *testing.T) {
	hole := image.Rect(2, 3, 6, 5)
	paletted := image.NewPaletted(image.Rect(0, 0, 8, 8), color.Palette{color.NRGBA{0, 0, 0, 255}, color.NRGBA{0, 0, 0, 0}})
	for y := hole.Min.Y; y < hole.Max.Y; y++ {
		for x := hole.Min.X; x < hole.Max.X; x++ {
			paletted.SetColorIndex(x, y, 1)
		}
	}
	rgba64 := image.NewNRGBA64(image.Rect(0, 0, 8, 8))
	for y := range 8 {
		for x := range 8 {
			if !(image.Point{x, y}).In(hole) {
				rgba64.SetNRGBA64(x, y, color.NRGBA64{A: 1}) // barely visible is still kept
			}
		}
	}
	tests := []struct {
		name string
		img  image.Image
	}{
		{"NRGBA", holeImage(8, 8, hole)},
		{"paletted with a transparent entry", paletted},
		{"16-bit", rgba64},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mask, err := DecodeMask(encodePNG(t, tt.img))
			if err != nil {
				t.Fatal(err)
			}
			checkRegion(t, mask, 8, 8, hole)
		})
	}
}

func TestDecodeMaskRejects(t *testing.T) {
	opaque := image.NewNRGBA(image.Rect(0, 0, 4, 4))
	for i := 3; i < len(opaque.Pix); i += 4 {
		opaque.Pix[i] = 255
	}
	var jpg bytes.Buffer
	if err := jpeg.Encode(&jpg, opaque, nil); err != nil {
		t.Fatal(err)
	}
	good := encodePNG(t, holeImage(4, 4, image.Rect(0, 0, 2, 2)))
	tests := []struct {
		name     string
		data     []byte
		wantCode string
	}{
		{"JPEG", jpg.Bytes(), CodeInvalidImageFormat},
		{"garbage", []byte("not an image"), CodeInvalidImageFormat},
		{"empty", nil, CodeInvalidImageFormat},
		{"truncated PNG", good[:len(good)/2], CodeInvalidImage},
		{"PNG signature only", pngSignature, CodeInvalidImage},
		{"no transparent pixel", encodePNG(t, opaque), CodeInvalidImage},
		{"gray without alpha", encodePNG(t, image.NewGray(image.Rect(0, 0, 4, 4))), CodeInvalidImage},
		{"sides beyond MaxSide", pngHeaderOnly(MaxSide+1, 8), CodeImageTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := DecodeMask(tt.data)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want *Error", err)
			}
			if e.Param != "mask" || e.Code != tt.wantCode {
				t.Errorf("got %q %q (%s), want mask %q", e.Param, e.Code, e.Message, tt.wantCode)
			}
		})
	}
}

// pngHeaderOnly is a PNG signature and an IHDR chunk for a w x h RGBA
// image, with no pixel data: enough for DecodeConfig, nothing to decode.
func pngHeaderOnly(w, h int) []byte {
	ihdr := make([]byte, 13)
	binary.BigEndian.PutUint32(ihdr[0:], uint32(w))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(h))
	ihdr[8], ihdr[9] = 8, 6 // 8-bit RGBA
	chunk := append([]byte("IHDR"), ihdr...)
	out := append([]byte{}, pngSignature...)
	out = binary.BigEndian.AppendUint32(out, 13)
	out = append(out, chunk...)
	return binary.BigEndian.AppendUint32(out, crc32.ChecksumIEEE(chunk))
}

func TestRepaintRegion(t *testing.T) {
	hole := image.Rect(1, 1, 3, 2)
	rgba := image.NewRGBA(image.Rect(10, 20, 14, 24)) // not at the origin
	for i := range rgba.Pix {
		rgba.Pix[i] = 255
	}
	for y := hole.Min.Y; y < hole.Max.Y; y++ {
		for x := hole.Min.X; x < hole.Max.X; x++ {
			rgba.SetRGBA(10+x, 20+y, color.RGBA{})
		}
	}
	checkRegion(t, RepaintRegion(rgba), 4, 4, hole)
	checkRegion(t, RepaintRegion(holeImage(4, 4, hole)), 4, 4, hole)
	for name, img := range map[string]image.Image{
		"gray":   image.NewGray(image.Rect(0, 0, 4, 4)),
		"ycbcr":  image.NewYCbCr(image.Rect(0, 0, 4, 4), image.YCbCrSubsampleRatio420),
		"opaque": holeImage(4, 4, image.Rectangle{}),
	} {
		if m := RepaintRegion(img); m != nil {
			t.Errorf("%s: repaint region %v, want nil", name, m.Rect)
		}
	}
}

// FuzzDecodeMask: any bytes give a binary mask the size the PNG header
// declares with something to repaint, or a *Error about the mask.
func FuzzDecodeMask(f *testing.F) {
	f.Add(encodePNG(f, holeImage(8, 8, image.Rect(2, 2, 4, 4))))
	f.Add(encodePNG(f, holeImage(3, 5, image.Rectangle{})))
	f.Add(pngHeaderOnly(MaxSide+1, 1))
	f.Add([]byte("\x89PNG\r\n\x1a\n"))
	f.Add([]byte("GIF89a"))
	f.Fuzz(func(t *testing.T, data []byte) {
		if cfg, err := png.DecodeConfig(bytes.NewReader(data)); err == nil && cfg.Width*cfg.Height > 1<<20 {
			t.Skip("large pictures only cost time")
		}
		mask, err := DecodeMask(data)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Param != "mask" || e.Code == "" || e.Message == "" {
				t.Fatalf("error %v is not a mask *Error", err)
			}
			return
		}
		cfg, err := png.DecodeConfig(bytes.NewReader(data))
		if err != nil || mask.Rect != image.Rect(0, 0, cfg.Width, cfg.Height) {
			t.Fatalf("mask %v for a PNG of %+v (%v)", mask.Rect, cfg, err)
		}
		repaint := 0
		for _, v := range mask.Pix {
			switch v {
			case MaskRepaint:
				repaint++
			case MaskKeep:
			default:
				t.Fatalf("mask value %d is neither keep nor repaint", v)
			}
		}
		if repaint == 0 {
			t.Fatal("accepted a mask with nothing to repaint")
		}
	})
}
