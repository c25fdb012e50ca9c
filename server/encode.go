package server

import (
	"bytes"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"sync"

	"github.com/gen2brain/webp"

	"github.com/sdgate/sdgate/compat"
)

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
		err = e.png.Encode(&buf, img)
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
