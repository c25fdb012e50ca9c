package synth

import (
	"encoding/binary"
	"hash/fnv"
	"math"
	"runtime"
	"sync"

	"github.com/sdgate/sdgate/sd/half"
)

// weightInit says how a parameter's values are drawn: bell-shaped noise
// with standard deviation std, or, when std is 0, the constant value (norm
// gains 1, shifts 0). Each tensor has its own stream, keyed by the model
// seed and the tensor's name, so values do not depend on writing order and
// inline and external-data files hold the same weights.
type weightInit struct {
	std   float32
	value float32
	seed  uint64
}

// fill writes elements start .. start+len(dst)-1 of the tensor. SplitMix64
// is a counter-based generator, so any stretch can be drawn on its own:
// chunks are generated in parallel and still give one well-defined stream.
func (w *weightInit) fill(dst []float32, start int64) {
	if w.std == 0 {
		for i := range dst {
			dst[i] = w.value
		}
		return
	}
	r := splitMix{state: w.seed + uint64(start)*splitMixGamma}
	std := w.std
	for i := range dst {
		dst[i] = std * approxNormal(r.next())
	}
}

// tensorSeed mixes the model seed with a tensor's full name.
func tensorSeed(seed uint64, name string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(name)) // a hash.Hash never fails to write
	r := splitMix{state: seed ^ h.Sum64()}
	return r.next()
}

const splitMixGamma = 0x9e3779b97f4a7c15

// splitMix is SplitMix64: tiny, fast and well mixed, which is all random
// weights need; no library generator promises the same stream forever.
type splitMix struct{ state uint64 }

func (r *splitMix) next() uint64 {
	r.state += splitMixGamma
	z := r.state
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// approxNormal turns 64 random bits into a value with mean 0 and variance 1:
// the sum of four 16-bit uniforms (Irwin-Hall), re-centred and scaled. It is
// bell-shaped and bounded by ±2√3, so no weight is ever an outlier that
// could overflow fp16. The four lanes are added as integers, two at a time.
func approxNormal(x uint64) float32 {
	const lanes = 0x0000ffff0000ffff
	pairs := x&lanes + x>>16&lanes // two 17-bit sums, in bits 0.. and 32..
	sum := pairs&0xffffffff + pairs>>32
	// Each uniform is (k+0.5)/65536: mean 2 for the four, variance 1/3.
	return (float32(sum)+2)*(sqrt3/65536) - 2*sqrt3
}

const sqrt3 = 1.7320508075688772

// chunkElems is how many elements are drawn and encoded at a time: the
// memory a tensor costs while it streams, per buffer.
const chunkElems = 1 << 15

// writeData streams the tensor's raw little-endian bytes.
func (t *tensor) writeData(ww *wireWriter) {
	switch {
	case t.raw != nil:
		ww.write(t.raw)
	case ww.zeroWeights:
		zeros := make([]byte, min(t.dataBytes(), chunkElems*4))
		for left := t.dataBytes(); left > 0; left -= int64(len(zeros)) {
			ww.write(zeros[:min(left, int64(len(zeros)))])
		}
	case t.ref != nil && t.ref.weights != nil:
		t.writeLoaded(ww)
	default:
		t.drawData(ww, runtime.GOMAXPROCS(0))
	}
}

// drawData draws and encodes the tensor's chunks on up to workers
// goroutines (each owning every workers-th chunk and two buffers) while
// this one writes them in order. Drawing fp16 weights costs about as much
// as the disk, so the big presets write in roughly half the time.
func (t *tensor) drawData(ww *wireWriter, workers int) {
	chunks := int((t.numel() + chunkElems - 1) / chunkElems)
	workers = max(1, min(workers, chunks))
	elem := t.dtype.elemSize()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(stop) // runs first: workers blocked on a send return

	done := make([]chan []byte, workers) // encoded chunks, in each worker's order
	free := make([]chan []byte, workers) // written buffers, back to their worker
	for w := range workers {
		done[w], free[w] = make(chan []byte, 2), make(chan []byte, 2)
		free[w] <- make([]byte, chunkElems*elem)
		free[w] <- make([]byte, chunkElems*elem)
		wg.Add(1)
		go func() {
			defer wg.Done()
			vals := make([]float32, chunkElems)
			for k := w; k < chunks; k += workers {
				var buf []byte
				select {
				case buf = <-free[w]:
				case <-stop:
					return
				}
				start := int64(k) * chunkElems
				n := min(chunkElems, t.numel()-start)
				t.init.fill(vals[:n], start)
				encodeFloats(buf[:n*elem], vals[:n], t.dtype)
				select {
				case done[w] <- buf[:n*elem]:
				case <-stop:
					return
				}
			}
		}()
	}
	for k := range chunks {
		buf := <-done[k%workers]
		ww.write(buf)
		if ww.err != nil {
			return
		}
		free[k%workers] <- buf[:cap(buf)]
	}
}

func encodeFloats(dst []byte, src []float32, dt dataType) {
	if dt == dtFloat16 {
		half.Encode(dst, src)
		return
	}
	for i, f := range src {
		binary.LittleEndian.PutUint32(dst[4*i:], math.Float32bits(f))
	}
}
