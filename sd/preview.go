package sd

import (
	"fmt"
	"time"

	"github.com/sdgate/sdgate/sd/scheduler"
	"github.com/sdgate/sdgate/sd/spec"
)

// previewer takes a request's partial images: after the steps that
// spec.PartialSteps picks, the first image's predicted x0 is decoded and
// handed to Request.Partial.
type previewer struct {
	at    []int // steps run (1-based) after which a preview is due
	next  int
	total int
	fn    func(spec.Partial)
	x0    []float32
}

// newPreviewer is nil when the request asks for no partial images.
func newPreviewer(j job, total int) *previewer {
	if j.Partial == nil || j.PartialImages <= 0 {
		return nil
	}
	n := min(j.PartialImages, spec.MaxPartialImages)
	return &previewer{at: spec.PartialSteps(n, total), total: total, fn: j.Partial}
}

// preview runs between the UNet call of step i and the scheduler's Step:
// guided is that step's model output and latents the sample it applies to
// (the request's own [N,4,h,w] slices); done counts the steps run once step
// i is. The decode's ORT time goes to clock like any other.
func (m *Model) preview(p *previewer, j job, sched scheduler.Scheduler, i, done int, guided, latents []float32, clock *ortClock) error {
	if p == nil || p.next >= len(p.at) || p.at[p.next] != done {
		return nil
	}
	began := time.Now()
	per := int(4 * j.latentH * j.latentW)
	if len(p.x0) != per {
		p.x0 = make([]float32, per)
	}
	if err := scheduler.PredictX0(sched, p.x0, guided[:per], latents[:per], i); err != nil {
		return fmt.Errorf("partial image: %w", err)
	}
	one := j
	one.N = 1
	images, err := m.decode(one, p.x0, clock)
	if err != nil {
		return fmt.Errorf("partial image: %w", err)
	}
	p.fn(spec.Partial{Index: p.next, Step: done, Total: p.total, Image: images[0], Cost: time.Since(began)})
	p.next++
	return nil
}
