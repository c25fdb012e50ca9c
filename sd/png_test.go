package sd

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"testing"

	"github.com/sdgate/sdgate/internal/pngtext"
)

func testImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := 0; y < h; y++ {
		for x := 0; x < w; x++ {
			img.Set(x, y, color.RGBA{uint8(x * 7), uint8(y * 3), uint8(x ^ y), 255})
		}
	}
	return img
}

func TestEncodePNGCarriesParameters(t *testing.T) {
	img := testImage(64, 48)
	for _, prompt := range []string{"a red fox, 8k", "ein Fuchs über Äckern", "狐狸 🦊"} {
		t.Run(prompt, func(t *testing.T) {
			p := &PNGParams{Prompt: prompt, NegativePrompt: "blurry", Steps: 20, Scheduler: "euler_a", Guidance: 7.5, Seed: 42, Width: 64, Height: 48, Model: "tiny"}
			var buf bytes.Buffer
			if err := EncodePNG(&buf, img, p); err != nil {
				t.Fatal(err)
			}
			decoded, err := png.Decode(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatalf("our PNG does not decode: %v", err)
			}
			got, ok := decoded.(*image.RGBA) // opaque images decode as RGBA
			if !ok || !bytes.Equal(got.Pix, img.Pix) {
				t.Errorf("pixels changed (decoded as %T)", decoded)
			}
			texts, err := pngtext.Read(buf.Bytes())
			if err != nil {
				t.Fatal(err)
			}
			want := prompt + "\nNegative prompt: blurry\nSteps: 20, Sampler: euler_a, CFG scale: 7.5, Seed: 42, Size: 64x48, Model: tiny"
			if texts["parameters"] != want {
				t.Errorf("parameters = %q, want %q", texts["parameters"], want)
			}
		})
	}
}

func TestToByteMatchesDiffusers(t *testing.T) {
	cases := map[float32]uint8{-1: 0, -2: 0, 1: 255, 3: 255, 0: 128, -0.5: 64, 0.5: 191}
	for in, want := range cases {
		if got := toByte(in); got != want {
			t.Errorf("toByte(%g) = %d, want %d", in, got, want)
		}
	}
}

// BenchmarkPNGEncode compares our encoder (BestSpeed, pooled buffers, text
// chunk) with image/png's default on a 512x512 image.
func BenchmarkPNGEncode(b *testing.B) {
	img := testImage(512, 512)
	// Generated images are textured, not smooth: add pixel noise so the
	// compressor sees realistic data.
	state := uint32(1)
	for i := range img.Pix {
		if i%4 != 3 {
			state = state*1664525 + 1013904223
			img.Pix[i] += uint8(state >> 28)
		}
	}
	p := &PNGParams{Prompt: "a photo of a cat", Steps: 20, Scheduler: "pndm", Guidance: 7.5, Seed: 1, Width: 512, Height: 512, Model: "tiny"}
	b.Run("sdgate", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := EncodePNG(&buf, img, p); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes")
	})
	b.Run("image-png-default", func(b *testing.B) {
		var buf bytes.Buffer
		for b.Loop() {
			buf.Reset()
			if err := png.Encode(&buf, img); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(buf.Len()), "bytes")
	})
}
