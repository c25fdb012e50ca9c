package server

import (
	"bytes"
	"compress/flate"
	"hash/adler32"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"testing"
	"time"
)

// testImage is w x h of smooth gradients with noise (what generated
// pictures look like to a compressor); alpha varies unless opaque.
func testImage(w, h int, opaque bool, seed uint64) *image.RGBA {
	r := rand.New(rand.NewPCG(seed, 1))
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			a := uint8(255)
			if !opaque {
				a = uint8(r.IntN(256))
			}
			img.SetRGBA(x, y, color.RGBA{uint8(x*255/max(w, 1)) ^ uint8(r.IntN(8)), uint8(y), uint8(r.IntN(256)), a})
		}
	}
	return img
}

func TestParallelPNGRoundTrips(t *testing.T) {
	for _, c := range []struct {
		w, h   int
		opaque bool
	}{{1, 1, true}, {3, 200, true}, {97, 65, true}, {64, 64, true}, {512, 130, true}, {1024, 1024, true}} {
		img := testImage(c.w, c.h, c.opaque, uint64(c.w*c.h))
		// A sub-image checks Rect and Stride are honoured.
		sub := img.SubImage(image.Rect(0, min(1, c.h-1), c.w, c.h)).(*image.RGBA)
		for _, src := range []*image.RGBA{img, sub} {
			var buf bytes.Buffer
			if err := encodePNGParallel(&buf, src, flate.BestSpeed); err != nil {
				t.Fatal(err)
			}
			got, err := png.Decode(&buf)
			if err != nil {
				t.Fatalf("%dx%d: not a valid PNG: %v", c.w, c.h, err)
			}
			b := src.Bounds()
			if got.Bounds().Dx() != b.Dx() || got.Bounds().Dy() != b.Dy() {
				t.Fatalf("decoded %v, want %v", got.Bounds(), b)
			}
			for y := range b.Dy() {
				for x := range b.Dx() {
					want := src.RGBAAt(b.Min.X+x, b.Min.Y+y)
					if c.opaque {
						want.A = 255
					}
					if g := color.NRGBAModel.Convert(got.At(x, y)).(color.NRGBA); g != color.NRGBA(want) && want.A == 255 {
						t.Fatalf("%dx%d: pixel (%d,%d) = %v, want %v", c.w, c.h, x, y, g, want)
					}
					if !c.opaque {
						gr, gg, gb, ga := got.At(x, y).RGBA()
						wr, wg, wb, wa := want.RGBA()
						if gr != wr || gg != wg || gb != wb || ga != wa {
							t.Fatalf("%dx%d: pixel (%d,%d) differs", c.w, c.h, x, y)
						}
					}
				}
			}
		}
	}
}

func TestAdler32Combine(t *testing.T) {
	data := bytes.Repeat([]byte("sdgate batches and streams "), 9000)
	for _, cut := range []int{0, 1, 65520, 65521, 100000, len(data)} {
		a, b := data[:cut], data[cut:]
		if got, want := adler32Combine(adler32.Checksum(a), adler32.Checksum(b), len(b)), adler32.Checksum(data); got != want {
			t.Errorf("cut %d: %08x, want %08x", cut, got, want)
		}
	}
}

// BenchmarkPNGEncode1024: the parallel encoder against image/png at the
// same (fastest) level on a 1024x1024 opaque picture; speedup and size
// ratio are what docs/performance.md reports.
func BenchmarkPNGEncode1024(b *testing.B) {
	for name, img := range map[string]*image.RGBA{
		"noisy":    testImage(1024, 1024, true, 7),
		"upscaled": resizeRGBA(testImage(256, 256, true, 7), 1024, 1024), // smooth, as a resized generation
	} {
		b.Run(name, func(b *testing.B) { benchPNG(b, img) })
	}
}

func benchPNG(b *testing.B, img *image.RGBA) {
	enc := png.Encoder{CompressionLevel: png.BestSpeed}
	var ours, std time.Duration
	var oursN, stdN int
	for b.Loop() {
		var x, y bytes.Buffer
		t0 := time.Now()
		if err := encodePNGParallel(&x, img, flate.BestSpeed); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if err := enc.Encode(&y, img); err != nil {
			b.Fatal(err)
		}
		std += time.Since(t1)
		ours += t1.Sub(t0)
		oursN, stdN = x.Len(), y.Len()
	}
	b.ReportMetric(float64(ours.Milliseconds())/float64(b.N), "parallel-ms")
	b.ReportMetric(float64(std.Milliseconds())/float64(b.N), "image/png-ms")
	b.ReportMetric(float64(std)/float64(ours), "speedup")
	b.ReportMetric(float64(oursN)/float64(stdN), "size-ratio")
}
