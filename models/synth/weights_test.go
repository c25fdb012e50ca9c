package synth

import (
	"bytes"
	"errors"
	"testing"
)

// TestFillRandomAccess: drawing a tensor in pieces from any offset gives
// the same values as drawing it in one go.
func TestFillRandomAccess(t *testing.T) {
	w := weightInit{std: 0.5, seed: 42}
	whole := make([]float32, 1000)
	w.fill(whole, 0)
	for _, cut := range []int{1, 333, 999} {
		pieces := make([]float32, 1000)
		w.fill(pieces[:cut], 0)
		w.fill(pieces[cut:], int64(cut))
		for i := range whole {
			if pieces[i] != whole[i] {
				t.Fatalf("cut %d: element %d = %v, want %v", cut, i, pieces[i], whole[i])
			}
		}
	}
}

func TestDrawDataParallelMatchesSerial(t *testing.T) {
	cases := []struct {
		name  string
		dtype dataType
		numel int64
	}{
		{"fp32 one partial chunk", dtFloat, 1000},
		{"fp32 uneven chunks", dtFloat, 5*chunkElems + 17},
		{"fp16 uneven chunks", dtFloat16, 7*chunkElems + 1},
		{"fp16 exact chunks", dtFloat16, 4 * chunkElems},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tn := &tensor{name: "w", dims: []int64{tc.numel}, dtype: tc.dtype, init: &weightInit{std: 1, seed: 9}}
			var serial bytes.Buffer
			tn.drawData(newWireWriter(&serial), 1)
			if int64(serial.Len()) != tn.dataBytes() {
				t.Fatalf("wrote %d bytes, want %d", serial.Len(), tn.dataBytes())
			}
			for _, workers := range []int{2, 3, 8} {
				var par bytes.Buffer
				tn.drawData(newWireWriter(&par), workers)
				if !bytes.Equal(par.Bytes(), serial.Bytes()) {
					t.Errorf("%d workers write other bytes than one", workers)
				}
			}
		})
	}
}

// failAfter accepts n bytes, then fails every write.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(p []byte) (int, error) {
	if len(p) > f.n {
		n := f.n
		f.n = 0
		return n, errDiskFull
	}
	f.n -= len(p)
	return len(p), nil
}

// TestDrawDataStopsOnError: a failing writer ends the stream at once and
// the workers exit (the race detector and a hang would both tell).
func TestDrawDataStopsOnError(t *testing.T) {
	tn := &tensor{name: "w", dims: []int64{20 * chunkElems}, dtype: dtFloat16, init: &weightInit{std: 1}}
	ww := newWireWriter(&failAfter{n: 3 * chunkElems})
	tn.drawData(ww, 4)
	if !errors.Is(ww.err, errDiskFull) {
		t.Fatalf("err = %v, want errDiskFull", ww.err)
	}
	if ww.n >= tn.dataBytes() {
		t.Errorf("wrote %d bytes of %d after the error", ww.n, tn.dataBytes())
	}
}
