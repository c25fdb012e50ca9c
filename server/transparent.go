// Transparent backgrounds. Stable Diffusion paints opaque pixels and has no
// alpha output, so sdgate cannot invent transparency. What it can do
// honestly is keep an alpha channel it was given: an edit with a mask keeps
// the input image's pixels outside the repainted region, and with
// background "transparent" it keeps their alpha too, so a cut-out subject
// stays cut out around the repainted part.

package server

import (
	"fmt"
	"image"
	"image/draw"

	xdraw "golang.org/x/image/draw"

	"github.com/sdgate/sdgate/compat"
)

// refuseTransparent is the 400 of a transparent background where no input
// alpha exists: generations and variations.
func refuseTransparent(background, endpoint string) error {
	if background != compat.BackgroundTransparent {
		return nil
	}
	return &compat.Error{Param: "background", Code: compat.CodeInvalidValue, Message: fmt.Sprintf(
		"Invalid 'background': sdgate cannot make transparent backgrounds for %s: Stable Diffusion paints opaque pixels and has no alpha output. "+
			"Use 'opaque' or 'auto'; an edit with a mask can keep the input image's own transparency with 'transparent'.", endpoint)}
}

// transparentEdit says when an edit's transparent background is honest: a
// mask names what is repainted (without one, the image's transparent
// pixels are themselves the region to repaint, so nothing would stay
// transparent), and the output format carries alpha.
func transparentEdit(req compat.ImageEditRequest) error {
	if req.Mask == nil {
		return &compat.Error{Param: "background", Code: compat.CodeInvalidValue, Message: "Invalid 'background': " +
			"'transparent' needs a mask: sdgate keeps the input image's alpha in the pixels the mask keeps, and without a mask " +
			"the image's transparent pixels are the region to repaint. Send a mask, or use 'opaque' or 'auto'."}
	}
	if f := req.OutputFormat; f == compat.OutputFormatJPEG {
		return &compat.Error{Param: "output_format", Code: compat.CodeInvalidValue, Message: "Invalid 'output_format': " +
			"background 'transparent' needs an output format with alpha: 'png' or 'webp'."}
	}
	return nil
}

// alphaAt is img's alpha channel scaled to w x h.
func alphaAt(img image.Image, w, h int) *image.Alpha {
	b := img.Bounds()
	src := image.NewAlpha(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(src, src.Rect, img, b.Min, draw.Src)
	if b.Dx() == w && b.Dy() == h {
		return src
	}
	dst := image.NewAlpha(image.Rect(0, 0, w, h))
	xdraw.BiLinear.Scale(dst, dst.Rect, src, src.Rect, draw.Src, nil)
	return dst
}

// restoreAlpha gives the kept pixels of dst (mask < 128, as
// spec.Composite keeps them) the alpha a, premultiplying their colour as
// image.RGBA stores it. Repainted pixels stay opaque.
func restoreAlpha(dst *image.RGBA, a *image.Alpha, mask *image.Gray) {
	w, h := dst.Rect.Dx(), dst.Rect.Dy()
	for y := range h {
		for x := range w {
			if mask.Pix[y*mask.Stride+x] >= 128 {
				continue
			}
			alpha := uint32(a.Pix[y*a.Stride+x])
			o := y*dst.Stride + 4*x
			for c := range 3 {
				dst.Pix[o+c] = uint8((uint32(dst.Pix[o+c])*alpha + 127) / 255)
			}
			dst.Pix[o+3] = uint8(alpha)
		}
	}
}
