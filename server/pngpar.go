package server

import (
	"bytes"
	"compress/flate"
	"encoding/binary"
	"hash/adler32"
	"hash/crc32"
	"image"
	"io"
	"runtime"
	"sync"
)

// A PNG encoder that filters and deflates horizontal strips of the image on
// all cores at once. Each strip is its own deflate run ending in a sync
// flush (a byte-aligned empty stored block), so the strips concatenate into
// one valid zlib stream, whose Adler-32 is combined from the strips'. The
// output is an ordinary PNG (8-bit RGB)
// that any decoder reads back to the same pixels; only the compression
// ratio differs slightly from one stream (each strip starts a new window).
// It takes opaque images (all the pipeline makes); others go to image/png.

// stripRows is the height of one strip: enough rows that the per-strip
// restart costs nothing measurable, few enough to spread a 512x512 image.
const stripRows = 64

// encodePNGParallel writes an opaque, non-empty img as an 8-bit RGB PNG.
func encodePNGParallel(w io.Writer, img *image.RGBA, level int) error {
	b := img.Bounds()
	width, height := b.Dx(), b.Dy()
	// Opaque only: image.RGBA is premultiplied and PNG is not, so other
	// images go to image/png, which converts them.
	bpp, colorType := 3, byte(2)
	strips := (height + stripRows - 1) / stripRows
	out := make([]stripOut, strips)
	work := make(chan int, strips)
	for i := range strips {
		work <- i
	}
	close(work)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), strips) {
		wg.Go(func() {
			for i := range work {
				y0 := b.Min.Y + i*stripRows
				y1 := min(y0+stripRows, b.Max.Y)
				out[i] = encodeStrip(img, y0, y1, bpp, level, i == strips-1)
			}
		})
	}
	wg.Wait()

	var buf bytes.Buffer
	buf.WriteString("\x89PNG\r\n\x1a\n")
	var ihdr [13]byte
	binary.BigEndian.PutUint32(ihdr[0:], uint32(width))
	binary.BigEndian.PutUint32(ihdr[4:], uint32(height))
	ihdr[8], ihdr[9] = 8, colorType // bit depth, colour type; compression, filter, interlace 0
	writeChunk(&buf, "IHDR", ihdr[:])

	size := 2 + 4
	for _, s := range out {
		if s.err != nil {
			return s.err
		}
		size += len(s.data)
	}
	idat := make([]byte, 0, size)
	idat = append(idat, 0x78, 0x01) // zlib: deflate, 32K window, no dictionary
	sum := uint32(1)
	for _, s := range out {
		idat = append(idat, s.data...)
		sum = adler32Combine(sum, s.adler, s.n)
	}
	idat = binary.BigEndian.AppendUint32(idat, sum)
	writeChunk(&buf, "IDAT", idat)
	writeChunk(&buf, "IEND", nil)
	_, err := w.Write(buf.Bytes())
	return err
}

type stripOut struct {
	data  []byte // raw deflate
	adler uint32 // of the filtered bytes
	n     int    // filtered bytes
	err   error
}

// encodeStrip filters rows y0..y1 (the row above y0 is the filters'
// previous row) and deflates them.
func encodeStrip(img *image.RGBA, y0, y1, bpp, level int, last bool) stripOut {
	width := img.Bounds().Dx()
	rowLen := 1 + width*bpp
	filtered := make([]byte, 0, (y1-y0)*rowLen)
	prev := make([]byte, width*bpp)
	cur := make([]byte, width*bpp)
	if y0 > img.Bounds().Min.Y {
		pixelRow(img, y0-1, bpp, prev)
	}
	var cand [5][]byte
	for f := range cand {
		cand[f] = make([]byte, width*bpp)
	}
	for y := y0; y < y1; y++ {
		pixelRow(img, y, bpp, cur)
		f := pickFilter(cur, prev, bpp, &cand)
		filtered = append(filtered, byte(f))
		filtered = append(filtered, cand[f]...)
		prev, cur = cur, prev
	}
	var z bytes.Buffer
	z.Grow(len(filtered) / 2)
	fw, err := flateWriter(&z, level)
	if err != nil {
		return stripOut{err: err}
	}
	defer flateWriters.Put(fw)
	if _, err := fw.w.Write(filtered); err != nil {
		return stripOut{err: err}
	}
	if last {
		err = fw.w.Close()
	} else {
		err = fw.w.Flush()
	}
	return stripOut{data: z.Bytes(), adler: adler32.Checksum(filtered), n: len(filtered), err: err}
}

// flateWriters recycle compressors: a new one allocates about a megabyte
// of tables, more than a strip's work at the fastest level.
var flateWriters sync.Pool

type pooledFlate struct {
	w     *flate.Writer
	level int
}

func flateWriter(dst io.Writer, level int) (*pooledFlate, error) {
	if fw, ok := flateWriters.Get().(*pooledFlate); ok && fw.level == level {
		fw.w.Reset(dst)
		return fw, nil
	}
	w, err := flate.NewWriter(dst, level)
	if err != nil {
		return nil, err
	}
	return &pooledFlate{w: w, level: level}, nil
}

// pixelRow copies row y as RGB bytes.
func pixelRow(img *image.RGBA, y, _ int, dst []byte) {
	b := img.Bounds()
	src := img.Pix[img.PixOffset(b.Min.X, y):][:4*b.Dx()]
	for i, j := 0, 0; i < len(src); i, j = i+4, j+3 {
		dst[j], dst[j+1], dst[j+2] = src[i], src[i+1], src[i+2]
	}
}

// pickFilter fills cand with the row under each PNG filter (none, sub, up,
// average, Paeth) and returns the one whose bytes, read as signed, sum
// smallest in magnitude: libpng's heuristic (image/png's too). A filter
// stops early once it cannot win.
func pickFilter(cur, prev []byte, bpp int, cand *[5][]byte) int {
	n := len(cur)
	best, bestSum := 0, 0
	for _, v := range cur {
		bestSum += abs8(v)
	}
	copy(cand[0], cur)
	// sub
	d, sum := cand[1][:n], 0
	for i := 0; i < bpp; i++ {
		d[i] = cur[i]
		sum += abs8(d[i])
	}
	for i := bpp; i < n && sum < bestSum; i++ {
		d[i] = cur[i] - cur[i-bpp]
		sum += abs8(d[i])
	}
	if sum < bestSum {
		best, bestSum = 1, sum
	}
	// up
	d, sum = cand[2][:n], 0
	for i := 0; i < n && sum < bestSum; i++ {
		d[i] = cur[i] - prev[i]
		sum += abs8(d[i])
	}
	if sum < bestSum {
		best, bestSum = 2, sum
	}
	// average
	d, sum = cand[3][:n], 0
	for i := 0; i < bpp; i++ {
		d[i] = cur[i] - prev[i]/2
		sum += abs8(d[i])
	}
	for i := bpp; i < n && sum < bestSum; i++ {
		d[i] = cur[i] - byte((int(cur[i-bpp])+int(prev[i]))/2)
		sum += abs8(d[i])
	}
	if sum < bestSum {
		best, bestSum = 3, sum
	}
	// Paeth; with a = c = 0 it predicts b, the row above
	d, sum = cand[4][:n], 0
	for i := 0; i < bpp; i++ {
		d[i] = cur[i] - prev[i]
		sum += abs8(d[i])
	}
	for i := bpp; i < n && sum < bestSum; i++ {
		d[i] = cur[i] - paethPredict(cur[i-bpp], prev[i], prev[i-bpp])
		sum += abs8(d[i])
	}
	if sum < bestSum {
		best = 4
	}
	return best
}

func abs8(v byte) int {
	if v < 128 {
		return int(v)
	}
	return 256 - int(v)
}

func paethPredict(a, b, c byte) byte {
	p := int(a) + int(b) - int(c)
	pa, pb, pc := absInt(p-int(a)), absInt(p-int(b)), absInt(p-int(c))
	switch {
	case pa <= pb && pa <= pc:
		return a
	case pb <= pc:
		return b
	}
	return c
}

func absInt(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func writeChunk(buf *bytes.Buffer, typ string, data []byte) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(data)))
	buf.Write(n[:])
	crc := crc32.NewIEEE()
	crc.Write([]byte(typ))
	crc.Write(data)
	buf.WriteString(typ)
	buf.Write(data)
	buf.Write(binary.BigEndian.AppendUint32(nil, crc.Sum32()))
}

// adler32Combine is the Adler-32 of A followed by B, from A's and B's
// checksums and B's length (zlib's adler32_combine).
func adler32Combine(a, b uint32, lenB int) uint32 {
	const base = 65521
	rem := uint32(lenB % base)
	sum1 := a & 0xffff
	sum2 := (rem * sum1) % base
	sum1 += (b & 0xffff) + base - 1
	sum2 += (a >> 16) + (b >> 16) + base - rem
	if sum1 >= base {
		sum1 -= base
	}
	if sum1 >= base {
		sum1 -= base
	}
	if sum2 >= base<<1 {
		sum2 -= base << 1
	}
	if sum2 >= base {
		sum2 -= base
	}
	return sum1 | sum2<<16
}
