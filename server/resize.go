package server

import (
	"image"
	"math"
	"runtime"
	"sync"

	"golang.org/x/image/draw"

	"github.com/sdgate/sdgate/internal/parallel"
)

// The Catmull-Rom resize of a delivered image, split across cores. It does
// the arithmetic of x/image/draw's Kernel.Scale for an *image.RGBA source
// and destination with draw.Src (the same two separable passes through a
// float64 buffer, the same weights, the same order of each sum), so its
// bytes equal draw.CatmullRom.Scale's (TestResizeMatchesXImage); x/image
// runs both passes on one core. Here the horizontal pass is split by source
// rows and the vertical pass by destination rows.

// kernelTap is one source column or row's weight in a destination pixel.
type kernelTap struct {
	coord  int32
	weight float64
}

// kernelSpan is the range of taps of one destination column or row and
// their inverse total weight (and that divided by 0xffff).
type kernelSpan struct {
	i, j           int32
	inv, invOxffff float64
}

type kernelTaps struct {
	spans []kernelSpan
	taps  []kernelTap
}

// newKernelTaps distributes sw source pixels over dw destination pixels
// exactly as x/image's newDistrib does (the conversions to float64 keep the
// compiler from fusing a multiply and an add, which would change bits).
func newKernelTaps(q *draw.Kernel, dw, sw int32) kernelTaps {
	scale := float64(sw) / float64(dw)
	halfWidth, argScale := q.Support, 1.0
	if scale > 1 { // shrinking: widen the support to visit every source pixel
		halfWidth *= scale
		argScale = 1 / scale
	}
	centers := make([]float64, dw)
	spans := make([]kernelSpan, dw)
	n := int32(0)
	for x := range spans {
		center := float64((float64(x)+0.5)*scale) - 0.5
		i := max(int32(math.Floor(center-halfWidth)), 0)
		j := int32(math.Ceil(center + halfWidth))
		if j > sw {
			j = max(sw, i)
		}
		centers[x], spans[x] = center, kernelSpan{i: i, j: j}
		n += j - i
	}
	taps := make([]kernelTap, 0, n)
	for x, sp := range spans {
		total := 0.0
		first := int32(len(taps))
		for coord := sp.i; coord < sp.j; coord++ {
			t := (centers[x] - float64(coord)) * argScale
			if t < 0 {
				t = -t
			}
			if t >= q.Support {
				continue
			}
			w := q.At(t)
			if w == 0 {
				continue
			}
			total += w
			taps = append(taps, kernelTap{coord, w})
		}
		total = 1 / total
		spans[x] = kernelSpan{i: first, j: int32(len(taps)), inv: total, invOxffff: total / 0xffff}
	}
	return kernelTaps{spans, taps}
}

// resizeTmp recycles the float buffer between the passes (16 MB for a
// 512 -> 1024 upscale).
var resizeTmp = sync.Pool{New: func() any { return new([][4]float64) }}

// resizeMinRows is the fewest rows a worker is given: below it the
// goroutine costs more than it saves.
const resizeMinRows = 16

// rowWorkers is how many goroutines share a pass over rows: one per core,
// each with at least resizeMinRows rows.
func rowWorkers(rows int) int { return min(runtime.GOMAXPROCS(0), rows/resizeMinRows) }

// catmullRomRGBA scales all of src into a new w x h image.
func catmullRomRGBA(src *image.RGBA, w, h int) *image.RGBA {
	sb := src.Bounds()
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	if w <= 0 || h <= 0 || sb.Empty() {
		return dst
	}
	sw, sh := sb.Dx(), sb.Dy()
	hor := newKernelTaps(draw.CatmullRom, int32(w), int32(sw))
	ver := newKernelTaps(draw.CatmullRom, int32(h), int32(sh))
	tmpp := resizeTmp.Get().(*[][4]float64)
	defer resizeTmp.Put(tmpp)
	if cap(*tmpp) < w*sh {
		*tmpp = make([][4]float64, w*sh)
	}
	tmp := (*tmpp)[:w*sh]
	parallel.Rows(sh, rowWorkers(sh), func(y0, y1 int) { scaleRowsX(tmp, src, hor, w, y0, y1) })
	parallel.Rows(h, rowWorkers(h), func(y0, y1 int) { scaleRowsY(dst, tmp, ver, w, y0, y1) })
	return dst
}

// scaleRowsX is the horizontal pass over source rows [y0, y1): each row's
// w destination columns, 16-bit channels times the weights, into tmp.
func scaleRowsX(tmp [][4]float64, src *image.RGBA, hor kernelTaps, w, y0, y1 int) {
	for y := y0; y < y1; y++ {
		row := src.Pix[src.PixOffset(src.Rect.Min.X, src.Rect.Min.Y+y):]
		t := y * w
		for _, sp := range hor.spans {
			var pr, pg, pb, pa float64
			for _, c := range hor.taps[sp.i:sp.j] {
				p := row[int(c.coord)*4 : int(c.coord)*4+4 : int(c.coord)*4+4]
				pr += float64(float64(uint32(p[0])*0x101) * c.weight)
				pg += float64(float64(uint32(p[1])*0x101) * c.weight)
				pb += float64(float64(uint32(p[2])*0x101) * c.weight)
				pa += float64(float64(uint32(p[3])*0x101) * c.weight)
			}
			tmp[t] = [4]float64{pr * sp.invOxffff, pg * sp.invOxffff, pb * sp.invOxffff, pa * sp.invOxffff}
			t++
		}
	}
}

// scaleRowsY is the vertical pass over destination rows [y0, y1), clamped
// to premultiplied alpha and rounded as x/image does.
func scaleRowsY(dst *image.RGBA, tmp [][4]float64, ver kernelTaps, w, y0, y1 int) {
	for dy := y0; dy < y1; dy++ {
		sp := ver.spans[dy]
		taps := ver.taps[sp.i:sp.j]
		out := dst.Pix[dy*dst.Stride : dy*dst.Stride+4*w]
		for dx := range w {
			var pr, pg, pb, pa float64
			for _, c := range taps {
				p := &tmp[int(c.coord)*w+dx]
				pr += float64(p[0] * c.weight)
				pg += float64(p[1] * c.weight)
				pb += float64(p[2] * c.weight)
				pa += float64(p[3] * c.weight)
			}
			pr, pg, pb = min(pr, pa), min(pg, pa), min(pb, pa)
			o := out[dx*4 : dx*4+4 : dx*4+4]
			o[0] = uint8(unitToU16(pr*sp.inv) >> 8)
			o[1] = uint8(unitToU16(pg*sp.inv) >> 8)
			o[2] = uint8(unitToU16(pb*sp.inv) >> 8)
			o[3] = uint8(unitToU16(pa*sp.inv) >> 8)
		}
	}
}

// unitToU16 maps [0, 1] to [0, 0xffff], rounding, clamped (x/image's ftou).
func unitToU16(f float64) uint16 {
	i := int32(float64(0xffff*f) + 0.5)
	if i > 0xffff {
		return 0xffff
	}
	if i > 0 {
		return uint16(i)
	}
	return 0
}
