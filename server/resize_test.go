package server

import (
	"bytes"
	"fmt"
	"image"
	"testing"

	"golang.org/x/image/draw"
)

// TestResizeMatchesXImage: the parallel resize writes the bytes of
// draw.CatmullRom.Scale (one core), up, down, uneven and on sub-images.
func TestResizeMatchesXImage(t *testing.T) {
	sizes := [][4]int{
		{1, 1, 7, 5}, {3, 2, 1, 1}, {64, 64, 512, 512}, {512, 512, 1024, 1024},
		{256, 256, 1024, 1024}, {1024, 1024, 256, 256}, {333, 97, 120, 401},
		{64, 64, 63, 65}, {8, 300, 300, 8}, {200, 200, 200, 17},
	}
	for i, s := range sizes {
		for _, opaque := range []bool{true, false} {
			t.Run(fmt.Sprintf("%dx%d_to_%dx%d_opaque=%v", s[0], s[1], s[2], s[3], opaque), func(t *testing.T) {
				src := testImage(s[0], s[1], opaque, uint64(i))
				want := image.NewRGBA(image.Rect(0, 0, s[2], s[3]))
				draw.CatmullRom.Scale(want, want.Bounds(), src, src.Bounds(), draw.Src, nil)
				got := catmullRomRGBA(src, s[2], s[3])
				if got.Bounds() != want.Bounds() || !bytes.Equal(got.Pix, want.Pix) {
					t.Fatalf("differs from x/image's serial Catmull-Rom (first byte %d)", firstDiff(got.Pix, want.Pix))
				}
			})
		}
	}
	t.Run("sub-image", func(t *testing.T) {
		whole := testImage(300, 200, true, 9)
		src := whole.SubImage(image.Rect(40, 30, 290, 180)).(*image.RGBA)
		want := image.NewRGBA(image.Rect(0, 0, 500, 311))
		draw.CatmullRom.Scale(want, want.Bounds(), src, src.Bounds(), draw.Src, nil)
		if got := resizeRGBA(src, 500, 311); !bytes.Equal(got.Pix, want.Pix) {
			t.Fatalf("sub-image differs at byte %d", firstDiff(got.Pix, want.Pix))
		}
	})
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// BenchmarkResize1024 compares x/image's serial Catmull-Rom with the
// parallel one on the request path's 512 -> 1024 upscale.
func BenchmarkResize1024(b *testing.B) {
	src := testImage(512, 512, true, 3)
	b.Run("x-image-serial", func(b *testing.B) {
		for b.Loop() {
			dst := image.NewRGBA(image.Rect(0, 0, 1024, 1024))
			draw.CatmullRom.Scale(dst, dst.Bounds(), src, src.Bounds(), draw.Src, nil)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		for b.Loop() {
			catmullRomRGBA(src, 1024, 1024)
		}
	})
}
