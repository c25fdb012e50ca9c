package sd_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/sdgate/sdgate/models/synth"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/sd/spec"
)

// mixedBatch is requests of one shape with everything else different:
// prompts, negative prompts, seeds, guidance scales, image counts; one with
// guidance off and one of other steps, which must not share UNet calls with
// the rest but still come back right.
func mixedBatch() []sd.Request {
	return []sd.Request{
		{Prompt: "a lighthouse at dusk", Seed: 1, HasSeed: true, Steps: 4, Guidance: 7.5, HasGuidance: true},
		{Prompt: "a red fox", NegativePrompt: "blurry", Seed: 99, HasSeed: true, Steps: 4, Guidance: 3, HasGuidance: true, N: 2},
		{Prompt: "a lighthouse at dusk", Seed: 1, HasSeed: true, Steps: 4, Guidance: 12, HasGuidance: true},
		{Prompt: "no guidance", Seed: 5, HasSeed: true, Steps: 4, Guidance: 1, HasGuidance: true},
		{Prompt: "euler a, noisy steps", Seed: 6, HasSeed: true, Steps: 4, Scheduler: "euler_a", Guidance: 5, HasGuidance: true},
		{Prompt: "other steps", Seed: 7, HasSeed: true, Steps: 3, Guidance: 7.5, HasGuidance: true},
	}
}

func items(reqs []sd.Request) []spec.BatchItem {
	out := make([]spec.BatchItem, len(reqs))
	for i, r := range reqs {
		out[i] = spec.BatchItem{Request: r}
	}
	return out
}

func sameImages(t *testing.T, what string, got, want sd.Result) {
	t.Helper()
	if len(got.Images) != len(want.Images) {
		t.Fatalf("%s: %d images, want %d", what, len(got.Images), len(want.Images))
	}
	for i := range got.Images {
		if got.Images[i].Seed != want.Images[i].Seed || !bytes.Equal(got.Images[i].Image.Pix, want.Images[i].Image.Pix) {
			t.Errorf("%s: image %d differs from the request run alone", what, i)
		}
	}
	if got.Prompt != want.Prompt || got.StepsRun != want.StepsRun || got.Scheduler != want.Scheduler || got.Guidance != want.Guidance {
		t.Errorf("%s: result %+v, alone %+v", what, got, want)
	}
}

func TestBatchIsByteIdenticalToAlone(t *testing.T) {
	for name, opts := range map[string]synth.Options{"fp32": {}, "fp16-scalar-timestep": {FP16: true, Timestep: "float-scalar"}} {
		t.Run(name, func(t *testing.T) {
			m := loadModel(t, opts)
			reqs := mixedBatch()
			began := time.Now()
			res := m.GenerateBatch(context.Background(), items(reqs))
			wall := time.Since(began)
			var sum time.Duration
			for i, r := range reqs {
				if res[i].Err != nil {
					t.Fatalf("item %d: %v", i, res[i].Err)
				}
				sameImages(t, r.Prompt, res[i].Result, generate(t, m, r))
				sum += res[i].Result.Total
			}
			for i, want := range []int{3, 3, 3, 1, 1, 1} {
				if got := res[i].Result.BatchSize; got != want {
					t.Errorf("item %d ran in a batch of %d, want %d", i, got, want)
				}
			}
			if sum > wall || sum < wall/2 {
				t.Errorf("the items' time shares add up to %v of a %v batch", sum, wall)
			}
		})
	}
}

func TestBatchKeys(t *testing.T) {
	m := loadModel(t, synth.Options{})
	key := func(r sd.Request) string {
		k, err := m.BatchKey(r)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	reqs := mixedBatch()
	if key(reqs[0]) != key(reqs[1]) || key(reqs[0]) != key(reqs[2]) {
		t.Error("prompts, seeds, guidance scales and n split a batch")
	}
	for _, i := range []int{3, 4, 5} {
		if key(reqs[0]) == key(reqs[i]) {
			t.Errorf("%q shares a key with guided 4-step euler", reqs[i].Prompt)
		}
	}
	if _, err := m.BatchKey(sd.Request{Prompt: "x", Steps: -1}); err == nil {
		t.Error("an invalid request has a batch key")
	}
}

// A member whose client leaves is dropped within a step; the others go on
// unchanged, and the one that left reports the steps it ran.
func TestBatchDropsACancelledMember(t *testing.T) {
	m := loadModel(t, synth.Options{})
	reqs := mixedBatch()[:3]
	left := errors.New("client left")
	steps := 0
	reqs[1].Progress = func(step, _ int) { steps = step }
	its := items(reqs)
	its[1].Cancelled = func() error {
		if steps >= 2 {
			return left
		}
		return nil
	}
	res := m.GenerateBatch(context.Background(), its)
	if !errors.Is(res[1].Err, left) || res[1].Result.StepsRun != 2 || res[1].Result.Total <= 0 {
		t.Fatalf("cancelled member: %v, %+v", res[1].Err, res[1].Result)
	}
	for _, i := range []int{0, 2} {
		if res[i].Err != nil {
			t.Fatal(res[i].Err)
		}
		sameImages(t, reqs[i].Prompt, res[i].Result, generate(t, m, mixedBatch()[i]))
	}
}

func TestBatchPartialImages(t *testing.T) {
	m := loadModel(t, synth.Options{})
	reqs := mixedBatch()[:2]
	var got []spec.Partial
	reqs[0].PartialImages, reqs[0].Partial = 1, func(p spec.Partial) { got = append(got, p) }
	res := m.GenerateBatch(context.Background(), items(reqs))
	if len(got) != 1 || got[0].Step != 2 {
		t.Fatalf("partials %+v", got)
	}
	alone := reqs[0]
	var want []spec.Partial
	alone.Partial = func(p spec.Partial) { want = append(want, p) }
	sameImages(t, "with a preview", res[0].Result, generate(t, m, alone))
	if !bytes.Equal(got[0].Image.Image.Pix, want[0].Image.Image.Pix) {
		t.Error("the batched preview differs from the one alone")
	}
}
