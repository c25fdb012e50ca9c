package server

import (
	"image"

	"golang.org/x/image/draw"
)

// resizeRGBA scales img to w x h; an image already that size is returned
// as is. Catmull-Rom keeps edges sharp when upscaling the native output
// and filters properly when downscaling.
func resizeRGBA(img *image.RGBA, w, h int) *image.RGBA {
	b := img.Bounds()
	if b.Dx() == w && b.Dy() == h {
		return img
	}
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	draw.CatmullRom.Scale(dst, dst.Bounds(), img, b, draw.Src, nil)
	return dst
}
