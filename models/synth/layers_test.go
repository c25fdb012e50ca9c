//go:build cgo

package synth

import (
	"context"
	"math"
	"path/filepath"
	"testing"

	ort "github.com/yalue/onnxruntime_go"
)

// runGraph writes g to a temp folder and runs it on one float32 input.
func runGraph(t *testing.T, g *graph, in []float64, inShape []int64, outShape ...int64) []float64 {
	t.Helper()
	dir := t.TempDir()
	if _, err := writeNetwork(context.Background(), dir, g, "test", false); err != nil {
		t.Fatal(err)
	}
	s := session(t, filepath.Join(dir, modelFile), []string{g.inputs[0].name}, []string{g.outputs[0].name})
	out := tensorOut(t, dtFloat, outShape...)
	if err := s.Run([]ort.Value{tensorIn(t, dtFloat, inShape, in)}, []ort.Value{out}); err != nil {
		t.Fatal(err)
	}
	return floatsOut(t, "out", dtFloat, out)
}

// TestGroupNorm checks the Reshape/InstanceNormalization/Reshape chain
// against GroupNorm computed directly (gain 1, shift 0).
func TestGroupNorm(t *testing.T) {
	needORT(t)
	const b, c, hw, groups = 2, 8, 6, 4
	const per = c / groups * hw // elements in one group
	g := newBuilder("gn", dtFloat, 1)
	x := g.input("x", dtFloat, sym("batch"), fixed(c), sym("h"), sym("w"))
	g.output(g.groupNorm(x, "norm", c, groups, 1e-5), "y", dtFloat, sym("batch"), fixed(c), sym("h"), sym("w"))
	in := seq(b*c*hw, 3)
	got := runGraph(t, g.g, in, []int64{b, c, 2, 3}, b, c, 2, 3)

	for start := 0; start < len(in); start += per {
		grp := in[start : start+per]
		var mean, sq float64
		for _, v := range grp {
			mean += v
		}
		mean /= per
		for _, v := range grp {
			sq += (v - mean) * (v - mean)
		}
		std := math.Sqrt(sq/per + 1e-5)
		for i, v := range grp {
			if want := (v - mean) / std; math.Abs(got[start+i]-want) > 1e-4 {
				t.Fatalf("element %d: got %v, want %v", start+i, got[start+i], want)
			}
		}
	}
}

// TestTextEncoderIsCausal: changing the token at position k changes no
// hidden state before k, and changes the one at k.
func TestTextEncoderIsCausal(t *testing.T) {
	needORT(t)
	dir := writeTiny(t, Options{})
	hidden := int(presets["tiny"].text.hidden)
	ids := make([]float64, 2*77)
	for i := range 77 {
		ids[i] = float64(100 + i)
		ids[77+i] = float64(100 + i)
	}
	const k = 10
	ids[77+k] = 300
	s := session(t, filepath.Join(dir, "text_encoder", modelFile), []string{"input_ids"}, []string{"last_hidden_state"})
	out := tensorOut(t, dtFloat, 2, 77, int64(hidden))
	if err := s.Run([]ort.Value{tensorIn(t, dtInt32, []int64{2, 77}, ids)}, []ort.Value{out}); err != nil {
		t.Fatal(err)
	}
	states := floatsOut(t, "last_hidden_state", dtFloat, out)
	differs := func(pos int) bool {
		a := states[pos*hidden:][:hidden]
		b := states[(77+pos)*hidden:][:hidden]
		for i := range a {
			if a[i] != b[i] {
				return true
			}
		}
		return false
	}
	for pos := range k {
		if differs(pos) {
			t.Errorf("position %d sees the token at %d", pos, k)
		}
	}
	if !differs(k) || !differs(76) {
		t.Errorf("positions %d and 76 do not see the changed token", k)
	}
}

// TestTimestepVariantsAgree: the three ways of passing the timestep give
// the same prediction for the same weights.
func TestTimestepVariantsAgree(t *testing.T) {
	needORT(t)
	const hidden = 32
	sample := seq(2*4*8*8, 1)
	context := seq(2*77*hidden, 1)
	predict := func(kind string) []float64 {
		dir := writeTiny(t, Options{Timestep: kind, Seed: 11})
		s := session(t, filepath.Join(dir, "unet", modelFile),
			[]string{"sample", "timestep", "encoder_hidden_states"}, []string{"out_sample"})
		var ts ort.Value
		switch kind {
		case TimestepInt64Batch:
			ts = tensorIn(t, dtInt64, []int64{2}, []float64{601, 601})
		case TimestepFloatBatch:
			ts = tensorIn(t, dtFloat, []int64{2}, []float64{601, 601})
		default:
			sc, err := ort.NewScalar(float32(601))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sc.Destroy() })
			ts = sc
		}
		out := tensorOut(t, dtFloat, 2, 4, 8, 8)
		err := s.Run([]ort.Value{
			tensorIn(t, dtFloat, []int64{2, 4, 8, 8}, sample), ts,
			tensorIn(t, dtFloat, []int64{2, 77, hidden}, context),
		}, []ort.Value{out})
		if err != nil {
			t.Fatal(err)
		}
		return floatsOut(t, "out_sample", dtFloat, out)
	}
	want := predict(TimestepFloatBatch)
	for _, kind := range []string{TimestepInt64Batch, TimestepFloatScalar} {
		got := predict(kind)
		for i := range want {
			if got[i] != want[i] {
				t.Fatalf("%s: element %d = %v, float-batch gives %v", kind, i, got[i], want[i])
			}
		}
	}
}
