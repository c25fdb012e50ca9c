package sd

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image"
	"image/png"
	"io"
	"strings"
	"sync"
	"unicode/utf8"
)

// PNGParams are the generation parameters written into a PNG's "parameters"
// text chunk, in the line format AUTOMATIC1111 and other SD tools read, so an
// image says how to make it again.
type PNGParams struct {
	Prompt         string
	NegativePrompt string
	Steps          int
	Scheduler      string
	Guidance       float64
	Seed           uint64
	Width, Height  int
	Model          string
}

// Text renders the parameters block.
func (p PNGParams) Text() string {
	var b strings.Builder
	b.WriteString(p.Prompt)
	if p.NegativePrompt != "" {
		b.WriteString("\nNegative prompt: ")
		b.WriteString(p.NegativePrompt)
	}
	fmt.Fprintf(&b, "\nSteps: %d, Sampler: %s, CFG scale: %g, Seed: %d, Size: %dx%d, Model: %s",
		p.Steps, p.Scheduler, p.Guidance, p.Seed, p.Width, p.Height, p.Model)
	return b.String()
}

// pngEncoder trades a little size for a lot of speed (zlib BestSpeed) and
// reuses its compression buffers across images.
var pngEncoder = png.Encoder{CompressionLevel: png.BestSpeed, BufferPool: &pngPool{}}

type pngPool struct{ p sync.Pool }

func (p *pngPool) Get() *png.EncoderBuffer {
	b, _ := p.p.Get().(*png.EncoderBuffer)
	return b
}
func (p *pngPool) Put(b *png.EncoderBuffer) { p.p.Put(b) }

// EncodePNG writes img as PNG with params in a text chunk right after IHDR
// (tEXt when the text is Latin-1, else UTF-8 iTXt). A nil params writes none.
func EncodePNG(w io.Writer, img image.Image, params *PNGParams) error {
	var buf bytes.Buffer
	if err := pngEncoder.Encode(&buf, img); err != nil {
		return err
	}
	data := buf.Bytes()
	if params == nil {
		_, err := w.Write(data)
		return err
	}
	// Signature (8) + IHDR chunk (4 length + 4 type + 13 data + 4 crc).
	const afterIHDR = 8 + 25
	if _, err := w.Write(data[:afterIHDR]); err != nil {
		return err
	}
	if _, err := w.Write(textChunk("parameters", params.Text())); err != nil {
		return err
	}
	_, err := w.Write(data[afterIHDR:])
	return err
}

func textChunk(keyword, text string) []byte {
	var typ string
	var body []byte
	if latin1, ok := toLatin1(text); ok {
		typ = "tEXt"
		body = append(append([]byte(keyword), 0), latin1...)
	} else {
		typ = "iTXt" // keyword, 0, compression flag 0, method 0, language "", 0, translated "", 0, text
		body = append(append([]byte(keyword), 0, 0, 0, 0, 0), text...)
	}
	chunk := make([]byte, 8, 12+len(body))
	binary.BigEndian.PutUint32(chunk, uint32(len(body)))
	copy(chunk[4:], typ)
	chunk = append(chunk, body...)
	return binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(chunk[4:]))
}

func toLatin1(s string) ([]byte, bool) {
	out := make([]byte, 0, len(s))
	for _, r := range s {
		if r > 0xff || r == utf8.RuneError {
			return nil, false
		}
		out = append(out, byte(r))
	}
	return out, true
}
