package compat

import (
	"bytes"
	"image"
	"image/png"
)

// Mask values: what DecodeMask and RepaintRegion write per pixel.
const (
	MaskKeep    = 0
	MaskRepaint = 255
)

var pngSignature = []byte("\x89PNG\r\n\x1a\n")

// DecodeMask reads an edit mask as upstream defines it: a PNG whose fully
// transparent pixels (alpha = 0) mark the region to change. The result is
// MaskRepaint there and MaskKeep elsewhere, with its origin at (0, 0).
// Sides beyond MaxSide are refused before the pixels are decoded, and a
// mask without a transparent pixel is refused: it would change nothing.
func DecodeMask(data []byte) (*image.Gray, error) {
	if !bytes.HasPrefix(data, pngSignature) {
		return nil, fieldErr("mask", CodeInvalidImageFormat,
			"Invalid 'mask': the mask must be a PNG file with an alpha channel.")
	}
	cfg, err := png.DecodeConfig(bytes.NewReader(data))
	if err != nil {
		return nil, fieldErr("mask", CodeInvalidImage, "Invalid 'mask': not a valid PNG file (%v).", err)
	}
	if cfg.Width > MaxSide || cfg.Height > MaxSide {
		return nil, fieldErr("mask", CodeImageTooLarge,
			"Invalid 'mask': %dx%d is larger than %dx%d.", cfg.Width, cfg.Height, MaxSide, MaxSide)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		return nil, fieldErr("mask", CodeInvalidImage, "Invalid 'mask': not a valid PNG file (%v).", err)
	}
	mask := RepaintRegion(img)
	if mask == nil {
		return nil, fieldErr("mask", CodeInvalidImage,
			"Invalid 'mask': it has no fully transparent pixels (alpha = 0), so nothing would be edited.")
	}
	return mask, nil
}

// RepaintRegion is the region an edit changes when no mask is sent: the
// image's own fully transparent pixels, as MaskRepaint. It is nil when the
// image has none (then the whole image is re-imagined).
func RepaintRegion(img image.Image) *image.Gray {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	mask := image.NewGray(image.Rect(0, 0, w, h))
	found := false
	mark := func(x, y int) {
		mask.Pix[y*mask.Stride+x] = MaskRepaint
		found = true
	}
	switch m := img.(type) {
	case *image.NRGBA: // PNG with alpha: the common case, read directly
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				if row[4*x+3] == 0 {
					mark(x, y)
				}
			}
		}
	case *image.RGBA:
		for y := range h {
			row := m.Pix[y*m.Stride : y*m.Stride+4*w]
			for x := range w {
				if row[4*x+3] == 0 {
					mark(x, y)
				}
			}
		}
	default:
		if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
			return nil
		}
		for y := range h {
			for x := range w {
				if _, _, _, a := img.At(b.Min.X+x, b.Min.Y+y).RGBA(); a == 0 {
					mark(x, y)
				}
			}
		}
	}
	if !found {
		return nil
	}
	return mask
}
