package sd_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/sd/spec"
)

func meanAbsDiff(a, b []byte) float64 {
	sum := 0.0
	for i := range a {
		d := float64(a[i]) - float64(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
	}
	return sum / float64(len(a))
}

// Partial images come at evenly spaced steps, are real decodes that move
// towards the final image, and leave the final image exactly as without them.
func TestPartialImages(t *testing.T) {
	m := loadModel(t, synth.Options{})
	for _, sched := range []string{"euler_a", "ddim", "dpmpp_2m"} {
		t.Run(sched, func(t *testing.T) {
			base := sd.Request{Prompt: "a lighthouse", Seed: 3, HasSeed: true, Steps: 8, Scheduler: sched}
			plain := generate(t, m, base)
			var got []spec.Partial
			with := base
			with.PartialImages = 3
			with.Partial = func(p spec.Partial) { got = append(got, p) }
			res := generate(t, m, with)
			if !bytes.Equal(res.Images[0].Image.Pix, plain.Images[0].Image.Pix) {
				t.Fatal("asking for partial images changed the final image")
			}
			if len(got) != 3 {
				t.Fatalf("%d partial images, want 3", len(got))
			}
			final := res.Images[0].Image.Pix
			for k, p := range got {
				if p.Index != k || p.Step != 2*(k+1) || p.Total != 8 || p.Cost <= 0 || p.Image.Seed != 3 {
					t.Errorf("partial %d: index %d step %d/%d cost %v seed %d", k, p.Index, p.Step, p.Total, p.Cost, p.Image.Seed)
				}
				if b := p.Image.Image.Bounds(); b.Dx() != res.Width || b.Dy() != res.Height {
					t.Errorf("partial %d is %v", k, b)
				}
				if bytes.Equal(p.Image.Image.Pix, final) {
					t.Errorf("partial %d equals the final image", k)
				}
			}
			first, last := meanAbsDiff(got[0].Image.Image.Pix, final), meanAbsDiff(got[2].Image.Image.Pix, final)
			t.Logf("mean |partial - final|: step 2 %.2f, step 6 %.2f; decode cost %v", first, last, got[0].Cost)
			if last >= first {
				t.Errorf("the step-6 preview (%.2f) is no closer to the final image than the step-2 one (%.2f)", last, first)
			}
		})
	}
}

func TestPartialImagesOutOfRange(t *testing.T) {
	m := loadModel(t, synth.Options{})
	_, err := m.Generate(context.Background(), sd.Request{Prompt: "x", Steps: 2, PartialImages: 4})
	var pe *spec.ParamError
	if !errors.As(err, &pe) || pe.Param != "partial_images" {
		t.Errorf("partial_images 4: %v", err)
	}
}

// A cancelled request reports the steps it ran, so they can be metered.
func TestCancelReportsStepsRun(t *testing.T) {
	m := loadModel(t, synth.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := sd.Request{Prompt: "x", Steps: 10, Progress: func(step, _ int) {
		if step == 3 {
			cancel()
		}
	}}
	res, err := m.Generate(ctx, req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want canceled", err)
	}
	if res.StepsRun != 3 || res.Total <= 0 {
		t.Errorf("cancelled after 3 steps: StepsRun %d, Total %v", res.StepsRun, res.Total)
	}
}
