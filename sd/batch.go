package sd

import (
	"context"
	"fmt"
	"time"

	"github.com/sdgate/sdgate/sd/rng"
	"github.com/sdgate/sdgate/sd/scheduler"
	"github.com/sdgate/sdgate/sd/spec"
)

// Batched denoising: several requests whose loops line up (same latent
// size, steps, scheduler, first step and guidance on/off) run one UNet call
// per step on their rows side by side. Everything else stays per request —
// its text conditioning, seed generators, guidance scale, scheduler state
// and decode — so each image is byte-identical to the request run alone.
//
// Time is split so a batch's shares add up to its wall time: a request owns
// what it runs alone (tokenize, text encoder, start latents, previews,
// decode), and each step's shared time (input fill, the UNet call, guidance
// and scheduler steps) is divided by UNet rows: N images, 2N with guidance.

// BatchKey says which requests can share UNet calls: equal keys, same
// model. It validates req like Validate.
func (m *Model) BatchKey(req Request) (string, error) {
	j, err := m.resolve(req)
	if err != nil {
		return "", err
	}
	sched, err := scheduler.New(j.Scheduler, m.schedConfig, j.Steps)
	if err != nil {
		return "", paramErr("scheduler", "%v", err)
	}
	start := 0
	if j.InitImage != nil {
		if start, err = scheduler.ImageToImage(sched, j.Strength); err != nil {
			return "", paramErr("strength", "%v", err)
		}
	}
	// Rows of one UNet call share the token axis: a long prompt's windows
	// (chunks.go) must match. SDXL prompts are one window.
	windows := 1
	if m.xl == nil {
		text, err := m.promptWindows(j)
		if err != nil {
			return "", err
		}
		windows = text.windows
	}
	return fmt.Sprintf("%dx%d/%d/%s/from%d/cfg=%t/windows=%d", j.latentW, j.latentH, j.Steps, sched.Name(), start, j.cfg, windows), nil
}

// member is one request of a running batch.
type member struct {
	item   spec.BatchItem
	j      job
	cond   conditioning
	sched  scheduler.Scheduler
	noise  scheduler.Noise
	st     *startState
	pv     *previewer
	scaled []float32
	guided []float32
	in     *unetInput
	rows   int // UNet rows: N, or 2N with guidance
	row    int // first row in the running batch

	clock             ortClock      // ORT time of its own calls
	own               time.Duration // wall time of its own work
	shared, sharedORT time.Duration // its share of the batched steps
	stepsRun          int
	images            []Image
	err               error
	out               bool // finished or dropped
}

// GenerateBatch runs items as batches of equal BatchKey (in order of first
// appearance) and returns one result per item. ctx stops them all (a
// worker shutdown); an item whose Cancelled reports a cause is dropped at
// the next step while the others go on.
func (m *Model) GenerateBatch(ctx context.Context, items []spec.BatchItem) []spec.BatchResult {
	out := make([]spec.BatchResult, len(items))
	m.mu.RLock()
	defer m.mu.RUnlock()
	if !m.loaded {
		for i := range out {
			out[i].Err = ErrNotLoaded
		}
		return out
	}
	var order []string
	groups := map[string][]int{}
	for i, it := range items {
		key, err := m.BatchKey(it.Request)
		if err != nil {
			out[i].Err = err
			continue
		}
		if _, ok := groups[key]; !ok {
			order = append(order, key)
		}
		groups[key] = append(groups[key], i)
	}
	for _, key := range order {
		idx := groups[key]
		members := make([]*member, len(idx))
		for k, i := range idx {
			members[k] = m.newMember(items[i])
		}
		m.runBatch(ctx, members)
		for k, i := range idx {
			out[i] = members[k].result(len(idx))
		}
	}
	return out
}

// newMember does a request's own set-up: conditioning, generators, start.
func (m *Model) newMember(it spec.BatchItem) *member {
	began := time.Now()
	mb := &member{item: it}
	defer func() { mb.own += time.Since(began) }()
	var err error
	if mb.j, err = m.resolve(it.Request); err != nil {
		mb.err, mb.out = err, true
		return mb
	}
	if mb.cond, err = m.conditioning(mb.j, &mb.clock); err != nil {
		mb.err, mb.out = err, true
		return mb
	}
	if mb.sched, err = scheduler.New(mb.j.Scheduler, m.schedConfig, mb.j.Steps); err != nil {
		mb.err, mb.out = paramErr("scheduler", "%v", err), true
		return mb
	}
	gens := make(batchNoise, mb.j.N)
	for i := range gens {
		gens[i] = rng.New(mb.j.Seed + uint64(i))
	}
	mb.noise = gens
	if mb.st, err = m.start(mb.j, mb.sched, gens, &mb.clock); err != nil {
		mb.err, mb.out = err, true
		return mb
	}
	mb.scaled = make([]float32, len(mb.st.latents))
	mb.guided = make([]float32, len(mb.st.latents))
	mb.rows = mb.j.N
	if mb.j.cfg {
		mb.rows *= 2
	}
	mb.pv = newPreviewer(mb.j, len(mb.sched.Timesteps())-mb.st.step)
	return mb
}

// active are the members still denoising.
func active(members []*member) []*member {
	var a []*member
	for _, mb := range members {
		if !mb.out {
			a = append(a, mb)
		}
	}
	return a
}

// prepareRun allocates the UNet tensors for the active members' rows and
// gives each its view of the sample buffer.
func (m *Model) prepareRun(live []*member) (*unetRun, error) {
	var hidden, timeCond []float32
	var added *addedCond // SDXL: each member's pooled embeddings and time ids, in row order
	if live[0].cond.added != nil {
		added = &addedCond{}
	}
	rows := 0
	for _, mb := range live {
		mb.row = rows
		rows += mb.rows
		hidden = append(hidden, mb.cond.hidden...)
		timeCond = append(timeCond, guidanceEmbedding(mb.j.Guidance, m.unet.condDim, mb.rows)...)
		if added != nil {
			added.textEmbeds = append(added.textEmbeds, mb.cond.added.textEmbeds...)
			added.timeIDs = append(added.timeIDs, mb.cond.added.timeIDs...)
		}
	}
	j := live[0].j
	run, err := m.unet.prepare(rows, j.latentH, j.latentW, hidden, live[0].cond.tokens, timeCond, added)
	if err != nil {
		return nil, err
	}
	buf := run.sampleBuffer()
	stride := int(m.unet.channels) * int(j.latentH*j.latentW)
	for _, mb := range live {
		view := buf[mb.row*stride : (mb.row+mb.rows)*stride]
		mb.in = newUNetInput(view, mb.rows, int(m.unet.channels), mb.st.per, mb.st.extra)
	}
	return run, nil
}

// runBatch denoises the members together and decodes each.
func (m *Model) runBatch(ctx context.Context, members []*member) {
	live := active(members)
	if len(live) == 0 {
		return
	}
	timesteps := live[0].sched.Timesteps()
	first := live[0].st.step
	per := live[0].st.per
	var run *unetRun
	defer func() {
		if run != nil {
			run.close()
		}
	}()
	stop := func(err error) {
		for _, mb := range active(members) {
			mb.err, mb.out = err, true
		}
	}
	for i := first; i < len(timesteps); i++ {
		if ctx.Err() != nil {
			stop(context.Cause(ctx))
			return
		}
		for _, mb := range live {
			if mb.item.Cancelled == nil {
				continue
			}
			if err := mb.item.Cancelled(); err != nil {
				mb.err, mb.out = err, true
			}
		}
		// A member that left (or failed) is dropped: the batch shrinks.
		if now := active(members); run == nil || len(now) != len(live) {
			if live = now; len(live) == 0 {
				return
			}
			if run != nil {
				run.close()
				run = nil
			}
			var err error
			if run, err = m.prepareRun(live); err != nil {
				stop(err)
				return
			}
		}
		began := time.Now()
		var alone time.Duration // previews: each member's own
		for _, mb := range live {
			mb.sched.ScaleModelInput(mb.scaled, mb.st.latents, i)
			mb.in.fill(mb.scaled)
		}
		ortBegan := time.Now()
		out, err := run.predict(timesteps[i])
		ortTook := time.Since(ortBegan)
		if err != nil {
			stop(err)
			return
		}
		rows := 0
		for _, mb := range live {
			rows += mb.rows
			guide(mb.guided, out[mb.row*per:(mb.row+mb.rows)*per], mb.j.cfg, float32(mb.j.Guidance))
			done := i + 1 - first
			pvBegan := time.Now()
			if err := m.preview(mb.pv, mb.j, mb.sched, i, done, mb.guided, mb.st.latents, &mb.clock); err != nil {
				mb.err, mb.out = err, true
				continue
			}
			pvTook := time.Since(pvBegan)
			mb.own += pvTook
			alone += pvTook
			if err := mb.sched.Step(i, mb.guided, mb.st.latents, mb.noise); err != nil {
				mb.err, mb.out = fmt.Errorf("scheduler step %d: %w", i, err), true
				continue
			}
			mb.st.blendKnown(mb.sched, i+1, len(timesteps))
			mb.stepsRun = done
			if mb.j.Progress != nil {
				mb.j.Progress(done, len(timesteps)-first)
			}
		}
		took := time.Since(began) - alone
		for _, mb := range live {
			mb.shared += took * time.Duration(mb.rows) / time.Duration(rows)
			mb.sharedORT += ortTook * time.Duration(mb.rows) / time.Duration(rows)
		}
	}
	for _, mb := range active(members) {
		began := time.Now()
		images, err := m.decode(mb.j, mb.st.latents, &mb.clock)
		mb.own += time.Since(began)
		if err != nil {
			mb.err, mb.out = err, true
			continue
		}
		mb.out, mb.images = true, images
	}
}

// result is the member's outcome in a batch of size requests.
func (mb *member) result(size int) spec.BatchResult {
	res := Result{StepsRun: mb.stepsRun, ORT: mb.clock.total + mb.sharedORT, Total: mb.own + mb.shared, BatchSize: size}
	if mb.err != nil {
		return spec.BatchResult{Result: res, Err: mb.err}
	}
	j := mb.j
	res.Images, res.Prompt, res.Truncated = mb.images, mb.cond.kept, mb.cond.truncated
	res.Width, res.Height, res.Steps, res.Guidance, res.Scheduler = j.Width, j.Height, j.Steps, j.Guidance, mb.cond.scheduler
	return spec.BatchResult{Result: res}
}

// BatchKey and GenerateBatch make Pipeline a models.BatchPipeline.
func (p *Pipeline) BatchKey(req Request) (string, error) { return p.model.BatchKey(req) }

func (p *Pipeline) GenerateBatch(ctx context.Context, items []spec.BatchItem) []spec.BatchResult {
	return p.model.GenerateBatch(ctx, items)
}
