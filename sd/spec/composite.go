package spec

import "image"

// Composite puts back, opaque, every pixel that mask keeps (value < 128;
// see compat.MaskRepaint) exactly as it is in keep, so only the repainted
// region changes. dst, keep and mask have the same size. The pipeline calls
// it at the generation size and the server again after resizing to the
// delivered size: one rule for "kept pixels are exact".
func Composite(dst *image.RGBA, keep image.Image, mask *image.Gray) {
	kb, mb := keep.Bounds(), mask.Bounds()
	rgba, _ := keep.(*image.RGBA)
	for y := 0; y < dst.Rect.Dy(); y++ {
		for x := 0; x < dst.Rect.Dx(); x++ {
			if mask.Pix[(y+mb.Min.Y-mask.Rect.Min.Y)*mask.Stride+x+mb.Min.X-mask.Rect.Min.X] >= 128 {
				continue
			}
			o := y*dst.Stride + 4*x
			if rgba != nil {
				s := rgba.PixOffset(kb.Min.X+x, kb.Min.Y+y)
				copy(dst.Pix[o:o+3], rgba.Pix[s:s+3])
			} else {
				r, g, b, _ := keep.At(kb.Min.X+x, kb.Min.Y+y).RGBA()
				dst.Pix[o], dst.Pix[o+1], dst.Pix[o+2] = uint8(r>>8), uint8(g>>8), uint8(b>>8)
			}
			dst.Pix[o+3] = 255
		}
	}
}
