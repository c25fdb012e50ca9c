package scheduler

import (
	"errors"
	"math"
	"testing"
)

// A sample noised from a known x0 with a known ε, and a model that predicts
// that ε exactly, must give that x0 back at every step.
func TestPredictX0RecoversTheCleanSample(t *testing.T) {
	cfg := sd15(t)
	const n = 64
	x0, eps := make([]float32, n), make([]float32, n)
	for j := range x0 {
		x0[j] = float32(math.Sin(float64(j))) * 0.8
		eps[j] = float32(math.Cos(float64(3*j))) * 1.2
	}
	for _, name := range []string{DDIM, Euler, EulerA, DPMPP2M, DPMPP2MKarras, PNDM} {
		s := mustNew(t, name, cfg, 10)
		for i := range len(s.Timesteps()) {
			sample, got := make([]float32, n), make([]float32, n)
			s.AddNoise(sample, x0, eps, i)
			if err := PredictX0(s, got, eps, sample, i); err != nil {
				t.Fatalf("%s step %d: %v", name, i, err)
			}
			for j := range got {
				if d := math.Abs(float64(got[j] - x0[j])); d > 2e-3*(1+math.Abs(float64(x0[j]))) {
					t.Fatalf("%s step %d: x0[%d] = %v, want %v", name, i, j, got[j], x0[j])
				}
			}
		}
	}
}

// LCM previews its boundary-conditioned estimate c_out·x0 + c_skip·x, the
// value its own Step carries forward (before re-noising).
func TestPredictX0LCMIsWhatStepKeeps(t *testing.T) {
	cfg := sd15(t)
	cfg.ClassName, cfg.OriginalInferenceSteps, cfg.TimestepScaling = "LCMScheduler", 50, 10
	s := mustNew(t, LCM, cfg, 4)
	last := len(s.Timesteps()) - 1
	sample, out, got := []float32{0.3, -1.2, 0.7}, []float32{0.1, 0.5, -0.4}, make([]float32, 3)
	for i := range last {
		s.Step(i, out, append([]float32(nil), sample...), fixedNoise{})
	}
	if err := PredictX0(s, got, out, sample, last); err != nil {
		t.Fatal(err)
	}
	step := append([]float32(nil), sample...)
	if err := s.Step(last, out, step, nil); err != nil { // the last step adds no noise
		t.Fatal(err)
	}
	for j := range got {
		if math.Abs(float64(got[j]-step[j])) > 1e-6 {
			t.Errorf("x0[%d] = %v, the last step gives %v", j, got[j], step[j])
		}
	}
}

func TestPredictX0RejectsBadInput(t *testing.T) {
	s := mustNew(t, Euler, sd15(t), 4)
	if err := PredictX0(s, make([]float32, 2), make([]float32, 3), make([]float32, 3), 0); !errors.Is(err, ErrLengthMismatch) {
		t.Errorf("short dst: %v", err)
	}
	if err := PredictX0(s, make([]float32, 3), make([]float32, 3), make([]float32, 3), 4); !errors.Is(err, ErrBadStep) {
		t.Errorf("step past the end: %v", err)
	}
}
