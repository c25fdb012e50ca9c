package scheduler

import (
	"runtime"
	"testing"
)

// sdLatentLen is one 512x512 Stable Diffusion latent: 4 x 64 x 64.
const sdLatentLen = 4 * 64 * 64

// stepper runs consecutive steps on one scheduler, starting a fresh one
// (outside any measurement) when the schedule runs out.
type stepper struct {
	tb     testing.TB
	name   string
	s      Scheduler
	n, i   int
	x, out []float32
	noise  Noise
}

func newStepper(tb testing.TB, name string) *stepper {
	x, eps := vectors(sdLatentLen)
	st := &stepper{tb: tb, name: name, x: x, out: eps, noise: &fixedNoise{eps}}
	st.reset()
	return st
}

func (st *stepper) reset() {
	st.s = mustNew(st.tb, st.name, sd15(st.tb), min(500, st.maxSteps()))
	st.n, st.i = len(st.s.Timesteps()), 0
	st.x, _ = vectors(sdLatentLen)
}

// maxSteps keeps LCM within its 50-step distillation schedule.
func (st *stepper) maxSteps() int {
	if st.name == LCM {
		return 50
	}
	return MaxSteps
}

func (st *stepper) step() {
	if err := st.s.Step(st.i, st.out, st.x, st.noise); err != nil {
		st.tb.Fatal(err)
	}
	st.i++
}

// Steps after the first allocate nothing, for every scheduler. Mallocs are
// counted over whole runs rather than averaged (testing.AllocsPerRun
// rounds an occasional allocation down to 0). The runtime itself allocates
// now and then (seen under -race), so a run is retried: an allocation of
// ours would show up in every run.
func TestStepDoesNotAllocate(t *testing.T) {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	for _, name := range Names() {
		t.Run(name, func(t *testing.T) {
			var allocs uint64
			for range 3 {
				if allocs = stepAllocs(t, name); allocs == 0 {
					return
				}
			}
			t.Errorf("%d allocations over a whole run after the first step, want 0", allocs)
		})
	}
}

// stepAllocs counts heap allocations over all steps but the first.
func stepAllocs(t *testing.T, name string) uint64 {
	st := newStepper(t, name)
	st.step() // the first call sizes the buffers
	in := make([]float32, sdLatentLen)
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for st.i < st.n {
		st.s.ScaleModelInput(in, st.x, st.i)
		st.step()
	}
	runtime.ReadMemStats(&after)
	return after.Mallocs - before.Mallocs
}

func BenchmarkStep(b *testing.B) {
	for _, name := range Names() {
		b.Run(name, func(b *testing.B) {
			st := newStepper(b, name)
			st.step()
			b.ReportAllocs()
			b.SetBytes(4 * sdLatentLen)
			for b.Loop() {
				if st.i == st.n {
					b.StopTimer()
					st.reset()
					st.step()
					b.StartTimer()
				}
				st.step()
			}
		})
	}
}
