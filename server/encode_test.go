package server

import (
	"bytes"
	"image"
	"testing"

	"github.com/gen2brain/webp"
)

func TestEncodeFormats(t *testing.T) {
	src := drawSeed(96, 64, 7)
	enc := newImageEncoder()
	tests := []struct {
		format  string
		quality int
		want    string
	}{
		{"png", 100, "png"},
		{"jpeg", 0, "jpeg"},
		{"jpeg", 100, "jpeg"},
		{"webp", 50, "webp"},
		{"webp", 100, "webp"},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			data, err := enc.encode(src, tt.format, tt.quality)
			if err != nil {
				t.Fatal(err)
			}
			img, format, err := image.Decode(bytes.NewReader(data))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if format != tt.want || img.Bounds().Dx() != 96 || img.Bounds().Dy() != 64 {
				t.Errorf("got %s %v", format, img.Bounds())
			}
		})
	}
	if _, err := enc.encode(src, "gif", 0); err == nil {
		t.Error("gif encoded without error")
	}
}

func TestEncodePNGIsLossless(t *testing.T) {
	src := drawSeed(40, 24, 9)
	data, err := newImageEncoder().encode(src, "png", 100)
	if err != nil {
		t.Fatal(err)
	}
	img, _, err := image.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for y := range 24 {
		for x := range 40 {
			if src.At(x, y) != img.At(x, y) {
				t.Fatalf("pixel %d,%d changed", x, y)
			}
		}
	}
}

func TestWebPQualityChangesSize(t *testing.T) {
	src := resizeRGBA(drawSeed(64, 64, 3), 256, 256)
	enc := newImageEncoder()
	low, err := enc.encode(src, "webp", 10)
	if err != nil {
		t.Fatal(err)
	}
	high, err := enc.encode(src, "webp", 95)
	if err != nil {
		t.Fatal(err)
	}
	if len(low) >= len(high) {
		t.Errorf("quality 10 gave %d bytes, quality 95 %d", len(low), len(high))
	}
	if _, err := webp.Decode(bytes.NewReader(low)); err != nil {
		t.Errorf("low quality webp: %v", err)
	}
}

func TestResizeRGBA(t *testing.T) {
	src := drawSeed(64, 64, 1)
	if got := resizeRGBA(src, 64, 64); got != src {
		t.Error("same-size resize copied the image")
	}
	for _, size := range [][2]int{{256, 256}, {32, 16}, {1792, 1024}} {
		got := resizeRGBA(src, size[0], size[1])
		if got.Bounds().Dx() != size[0] || got.Bounds().Dy() != size[1] {
			t.Errorf("resize to %v gave %v", size, got.Bounds())
		}
	}
	// A flat image stays flat: the filter neither darkens nor rings.
	flat := image.NewRGBA(image.Rect(0, 0, 8, 8))
	for i := range flat.Pix {
		flat.Pix[i] = 200
	}
	big := resizeRGBA(flat, 50, 30)
	for i, v := range big.Pix {
		if v != 200 {
			t.Fatalf("byte %d = %d after resizing a flat image", i, v)
		}
	}
}

func BenchmarkEncode1024(b *testing.B) {
	src := resizeRGBA(drawSeed(64, 64, 3), 1024, 1024)
	enc := newImageEncoder()
	for _, f := range []struct {
		format  string
		quality int
	}{{"png", 100}, {"jpeg", 90}, {"webp", 80}, {"webp", 100}} {
		b.Run(f.format, func(b *testing.B) {
			for b.Loop() {
				if _, err := enc.encode(src, f.format, f.quality); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("resize_512_to_1024", func(b *testing.B) {
		src := drawSeed(512, 512, 3)
		for b.Loop() {
			resizeRGBA(src, 1024, 1024)
		}
	})
}
