package dispatch

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"fmt"
	"image"
	"image/draw"
	"io"
)

// A blob is what travels through the object store: a JSON header and a
// list of image frames (encodeFrame), "SDGB" | version | u32 header
// length | header | u32 frame count | (u32 length | frame)*.
var blobMagic = [4]byte{'S', 'D', 'G', 'B'}

const (
	blobVersion    = 1
	maxBlobHeader  = 1 << 20
	maxBlobFrames  = 64
	maxBlobBytes   = 512 << 20
	maxFramePixels = maxDimension * maxDimension / 4 // 16 Mpx: 4096x4096
)

func encodeBlob(header []byte, frames [][]byte) []byte {
	size := 4 + 1 + 4 + len(header) + 4
	for _, f := range frames {
		size += 4 + len(f)
	}
	out := make([]byte, 0, size)
	out = append(out, blobMagic[:]...)
	out = append(out, blobVersion)
	out = binary.BigEndian.AppendUint32(out, uint32(len(header)))
	out = append(out, header...)
	out = binary.BigEndian.AppendUint32(out, uint32(len(frames)))
	for _, f := range frames {
		out = binary.BigEndian.AppendUint32(out, uint32(len(f)))
		out = append(out, f...)
	}
	return out
}

// decodeBlob splits a blob into its header and frames, checking every
// length against what is left; the frames alias data.
func decodeBlob(data []byte) (header []byte, frames [][]byte, err error) {
	bad := func(format string, args ...any) ([]byte, [][]byte, error) {
		return nil, nil, fmt.Errorf("%w: blob: %s", ErrBadMessage, fmt.Sprintf(format, args...))
	}
	if len(data) > maxBlobBytes {
		return bad("%d bytes, limit %d", len(data), maxBlobBytes)
	}
	if len(data) < 9 || !bytes.Equal(data[:4], blobMagic[:]) {
		return bad("no SDGB magic")
	}
	if data[4] != blobVersion {
		return bad("version %d, want %d", data[4], blobVersion)
	}
	rest := data[5:]
	next := func(limit int) ([]byte, bool) {
		if len(rest) < 4 {
			return nil, false
		}
		n := binary.BigEndian.Uint32(rest)
		rest = rest[4:]
		if uint64(n) > uint64(limit) || uint64(n) > uint64(len(rest)) {
			return nil, false
		}
		chunk := rest[:n:n]
		rest = rest[n:]
		return chunk, true
	}
	header, ok := next(maxBlobHeader)
	if !ok {
		return bad("truncated header")
	}
	if len(rest) < 4 {
		return bad("truncated frame count")
	}
	count := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if count > maxBlobFrames {
		return bad("%d frames, limit %d", count, maxBlobFrames)
	}
	for i := range count {
		f, ok := next(len(rest))
		if !ok {
			return bad("truncated frame %d", i)
		}
		frames = append(frames, f)
	}
	if len(rest) != 0 {
		return bad("%d trailing bytes", len(rest))
	}
	return header, frames, nil
}

// encodeFrame is one image as a blob frame: raw pixels (encodeRaw),
// deflated at BestSpeed. Raw keeps every byte exact (premultiplied,
// translucent init images too) and skips PNG's per-row filter search,
// which cost ten times the deflate; deflate still halves real images.
func encodeFrame(img image.Image) ([]byte, error) {
	var buf bytes.Buffer
	zw, err := flate.NewWriter(&buf, flate.BestSpeed)
	if err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	if _, err := zw.Write(encodeRaw(img)); err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	if err := zw.Close(); err != nil {
		return nil, fmt.Errorf("frame: %w", err)
	}
	return buf.Bytes(), nil
}

// decodeFrame inflates a frame, never past the largest raw image allowed,
// and decodes it with decodeRaw's checks.
func decodeFrame(frame []byte) (image.Image, error) {
	const limit = 12 + 4*maxFramePixels
	raw, err := io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(frame)), limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: frame: %w", ErrBadMessage, err)
	}
	if len(raw) > limit {
		return nil, fmt.Errorf("%w: frame inflates past %d bytes", ErrBadMessage, limit)
	}
	return decodeRaw(raw)
}

// asRGBA returns img as a tight *image.RGBA at the origin, converting
// (or copying a sub-image) when it is not one.
func asRGBA(img image.Image) *image.RGBA {
	if rgba, ok := img.(*image.RGBA); ok && rgba.Rect.Min == (image.Point{}) && rgba.Stride == 4*rgba.Rect.Dx() &&
		len(rgba.Pix) == rgba.Stride*rgba.Rect.Dy() {
		return rgba
	}
	b := img.Bounds()
	out := image.NewRGBA(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// asGray returns img as a tight *image.Gray at the origin (masks).
func asGray(img image.Image) *image.Gray {
	if g, ok := img.(*image.Gray); ok && g.Rect.Min == (image.Point{}) && g.Stride == g.Rect.Dx() &&
		len(g.Pix) == g.Stride*g.Rect.Dy() {
		return g
	}
	b := img.Bounds()
	out := image.NewGray(image.Rect(0, 0, b.Dx(), b.Dy()))
	draw.Draw(out, out.Rect, img, b.Min, draw.Src)
	return out
}

// A raw image is u32 width | u32 height | u32 channels | pixels: an init
// image may be translucent, and premultiplied RGBA does not survive PNG's
// unpremultiplied round trip exactly.
func encodeRaw(img image.Image) []byte {
	var pix []byte
	var w, h, ch int
	switch m := img.(type) {
	case *image.Gray:
		g := asGray(m)
		w, h, ch, pix = g.Rect.Dx(), g.Rect.Dy(), 1, g.Pix
	default:
		r := asRGBA(img)
		w, h, ch, pix = r.Rect.Dx(), r.Rect.Dy(), 4, r.Pix
	}
	out := make([]byte, 0, 12+len(pix))
	out = binary.BigEndian.AppendUint32(out, uint32(w))
	out = binary.BigEndian.AppendUint32(out, uint32(h))
	out = binary.BigEndian.AppendUint32(out, uint32(ch))
	return append(out, pix...)
}

// decodeRaw is encodeRaw's inverse, bounds-checked: an *image.RGBA for 4
// channels, an *image.Gray for 1.
func decodeRaw(frame []byte) (image.Image, error) {
	if len(frame) < 12 {
		return nil, fmt.Errorf("%w: raw frame of %d bytes", ErrBadMessage, len(frame))
	}
	w := binary.BigEndian.Uint32(frame)
	h := binary.BigEndian.Uint32(frame[4:])
	ch := binary.BigEndian.Uint32(frame[8:])
	pix := frame[12:]
	if w == 0 || h == 0 || w > maxDimension || h > maxDimension || uint64(w)*uint64(h) > maxFramePixels ||
		(ch != 1 && ch != 4) || uint64(len(pix)) != uint64(w)*uint64(h)*uint64(ch) {
		return nil, fmt.Errorf("%w: raw frame %dx%dx%d with %d bytes", ErrBadMessage, w, h, ch, len(pix))
	}
	rect := image.Rect(0, 0, int(w), int(h))
	own := append([]byte(nil), pix...)
	if ch == 1 {
		return &image.Gray{Pix: own, Stride: int(w), Rect: rect}, nil
	}
	return &image.RGBA{Pix: own, Stride: 4 * int(w), Rect: rect}, nil
}
