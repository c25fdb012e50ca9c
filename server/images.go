// Pixels in and out of the server: decoding uploads, scaling masks,
// resizing to the delivered size, and encoding PNG, JPEG and WebP.

package server

import (
	"bytes"
	"compress/flate"
	"fmt"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"sync"

	"github.com/gen2brain/webp"
	"golang.org/x/image/draw"

	"github.com/sdgate/sdgate/compat"
)

// decodeEditInput decodes the image and the mask (or finds the image's own
// transparent pixels) and checks their shapes against each other and the
// family.
func decodeEditInput(req compat.ImageEditRequest, er compat.EditRules) (EditInput, error) {
	img, err := decodeUpload(req.Images[0])
	if err != nil {
		return EditInput{}, err
	}
	if err := checkSquare(img, er, "edits"); err != nil {
		return EditInput{}, err
	}
	if req.Mask == nil {
		return EditInput{Image: img, Mask: compat.RepaintRegion(img)}, nil
	}
	mask, err := compat.DecodeMask(req.Mask.Data)
	if err != nil {
		return EditInput{}, err
	}
	if is, ms := img.Bounds().Size(), mask.Rect.Size(); is != ms {
		return EditInput{}, &compat.Error{Param: "mask", Code: compat.CodeInvalidImage, Message: fmt.Sprintf(
			"Invalid 'mask': the mask is %dx%d but the image is %dx%d; they must be the same size.", ms.X, ms.Y, is.X, is.Y)}
	}
	return EditInput{Image: img, Mask: mask}, nil
}

// checkSquare enforces dall-e-2's square images.
func checkSquare(img image.Image, er compat.EditRules, endpoint string) error {
	if s := img.Bounds().Size(); er.Square && s.X != s.Y {
		return &compat.Error{Param: "image", Code: compat.CodeInvalidImage, Message: fmt.Sprintf(
			"Invalid 'image': dall-e-2 %s need a square image, but it is %dx%d.", endpoint, s.X, s.Y)}
	}
	return nil
}

// imageCodec decodes one upload format.
type imageCodec struct {
	name   string
	magic  func([]byte) bool
	config func([]byte) (image.Config, error)
	decode func([]byte) (image.Image, error)
}

// uploadCodecs are the formats edits and variations accept, recognised by
// their bytes: clients declare application/octet-stream as often as not.
var uploadCodecs = []imageCodec{
	{"PNG", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")) },
		func(b []byte) (image.Config, error) { return png.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return png.Decode(bytes.NewReader(b)) }},
	{"JPEG", func(b []byte) bool { return bytes.HasPrefix(b, []byte("\xff\xd8\xff")) },
		func(b []byte) (image.Config, error) { return jpeg.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return jpeg.Decode(bytes.NewReader(b)) }},
	{"WebP", func(b []byte) bool { return len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP" },
		func(b []byte) (image.Config, error) { return webp.DecodeConfig(bytes.NewReader(b)) },
		func(b []byte) (image.Image, error) { return webp.Decode(bytes.NewReader(b)) }},
}

// decodeUpload decodes a PNG, JPEG or WebP upload. Its declared sides are
// checked before any pixel is decoded, so a small file cannot claim a huge
// picture.
func decodeUpload(u compat.Upload) (image.Image, error) {
	codec, _, err := probeUpload(u)
	if err != nil {
		return nil, err
	}
	img, err := codec.decode(u.Data)
	if err != nil {
		return nil, undecodable(uploadParam(u), codec.name, err)
	}
	return img, nil
}

// uploadParam is the wire name of an upload's field in errors.
func uploadParam(u compat.Upload) string {
	if u.Field == compat.FieldImages { // a JSON edit's data URL
		return "images[0].image_url"
	}
	return "image"
}

func undecodable(param, format string, err error) error {
	return &compat.Error{Param: param, Code: compat.CodeInvalidImage,
		Message: fmt.Sprintf("Invalid '%s': the file is not a valid %s image (%v).", param, format, err)}
}

// opaqueRGBA copies img to an opaque RGBA image at the origin. Partly
// transparent pixels keep their colour at full opacity (not darkened by
// premultiplication): the result is opaque anyway, and fully transparent
// pixels are repainted.
func opaqueRGBA(img image.Image) *image.RGBA {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	switch m := img.(type) {
	case *image.NRGBA:
		for y := range h {
			copy(dst.Pix[y*dst.Stride:y*dst.Stride+4*w], m.Pix[m.PixOffset(b.Min.X, b.Min.Y+y):])
		}
		for i := 3; i < len(dst.Pix); i += 4 {
			dst.Pix[i] = 255
		}
		return dst
	}
	if o, ok := img.(interface{ Opaque() bool }); ok && o.Opaque() {
		draw.Draw(dst, dst.Rect, img, b.Min, draw.Src)
		return dst
	}
	for y := range h {
		for x := range w {
			c := color.NRGBAModel.Convert(img.At(b.Min.X+x, b.Min.Y+y)).(color.NRGBA)
			c.A = 255
			dst.SetRGBA(x, y, color.RGBA(c))
		}
	}
	return dst
}

// scaleMask resizes a repaint mask and keeps it binary. A pixel of the
// result is repainted when any pixel it covers is, so a thin region never
// vanishes when the mask shrinks to the generation size.
func scaleMask(m *image.Gray, w, h int) *image.Gray {
	sw, sh := m.Rect.Dx(), m.Rect.Dy()
	if sw == w && sh == h {
		return m
	}
	out := image.NewGray(image.Rect(0, 0, w, h))
	for y := range h {
		y0, y1 := span(y, h, sh)
		for x := range w {
			x0, x1 := span(x, w, sw)
			out.Pix[y*out.Stride+x] = regionValue(m, x0, y0, x1, y1)
		}
	}
	return out
}

// span is the source range [lo, hi) that destination index i of n covers
// in a source of size src (at least one source pixel).
func span(i, n, src int) (int, int) {
	lo := i * src / n
	hi := max(lo+1, ((i+1)*src+n-1)/n)
	return lo, min(hi, src)
}

func regionValue(m *image.Gray, x0, y0, x1, y1 int) uint8 {
	for y := y0; y < y1; y++ {
		row := m.Pix[y*m.Stride:]
		for x := x0; x < x1; x++ {
			if row[x] >= 128 {
				return compat.MaskRepaint
			}
		}
	}
	return compat.MaskKeep
}

// resizeRGBA scales img to w x h; an image already that size is returned
// as is. Catmull-Rom keeps edges sharp when upscaling the native output
// and filters properly when downscaling.
func resizeRGBA(img *image.RGBA, w, h int) *image.RGBA {
	b := img.Bounds()
	if b.Dx() == w && b.Dy() == h {
		return img
	}
	return catmullRomRGBA(img, w, h) // draw.CatmullRom.Scale's bytes, on all cores
}

// pngBuffers recycles the encoder's scratch buffers between requests.
type pngBuffers struct{ pool sync.Pool }

func (p *pngBuffers) Get() *png.EncoderBuffer {
	b, _ := p.pool.Get().(*png.EncoderBuffer)
	return b
}

func (p *pngBuffers) Put(b *png.EncoderBuffer) { p.pool.Put(b) }

// imageEncoder turns pictures into response bytes. It is the one place
// images are encoded, so a PNG writer with a parameters chunk can replace
// the standard one here.
type imageEncoder struct {
	png png.Encoder
}

func newImageEncoder() *imageEncoder {
	return &imageEncoder{png: png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngBuffers{}}}
}

// contentTypes of the output formats.
var contentTypes = map[string]string{
	compat.OutputFormatPNG:  "image/png",
	compat.OutputFormatJPEG: "image/jpeg",
	compat.OutputFormatWEBP: "image/webp",
}

// encode writes img as format; quality (0..100) applies to jpeg and webp,
// where upstream's output_compression 100 means best quality.
func (e *imageEncoder) encode(img image.Image, format string, quality int) ([]byte, error) {
	var buf bytes.Buffer
	b := img.Bounds()
	buf.Grow(b.Dx() * b.Dy())
	var err error
	switch format {
	case compat.OutputFormatPNG:
		if rgba, ok := img.(*image.RGBA); ok && !rgba.Rect.Empty() && rgba.Opaque() {
			err = encodePNGParallel(&buf, rgba, flate.BestSpeed)
		} else {
			err = e.png.Encode(&buf, img)
		}
	case compat.OutputFormatJPEG:
		err = jpeg.Encode(&buf, img, &jpeg.Options{Quality: min(max(quality, 1), 100)})
	case compat.OutputFormatWEBP:
		// The library reads quality 0 as its default (75) and 100 as
		// lossless; 1..99 stay lossy as asked.
		err = webp.Encode(&buf, img, webp.Options{Quality: max(quality, 1), Method: 2})
	default:
		return nil, fmt.Errorf("unknown output format %q", format)
	}
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", format, err)
	}
	return buf.Bytes(), nil
}
