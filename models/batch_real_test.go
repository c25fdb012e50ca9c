//go:build cgo

package models

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// Through the registry and the real pipeline, concurrent compatible
// requests run batched and still give exactly the images each gives alone.
func TestBatchedRegistryMatchesUnbatched(t *testing.T) {
	dir := modelsDir(t)
	reqs := []spec.Request{
		{Prompt: "a lighthouse", Seed: 1, HasSeed: true, Steps: 3, Guidance: 7.5, HasGuidance: true},
		{Prompt: "a fox", NegativePrompt: "blur", Seed: 2, HasSeed: true, Steps: 3, Guidance: 4, HasGuidance: true},
		{Prompt: "a boat", Seed: 3, HasSeed: true, Steps: 3, Guidance: 9, HasGuidance: true, N: 2},
	}
	run := func(batch BatchOptions) []spec.Result {
		r, err := NewRegistry(RegistryOptions{Open: testOpener(t), Dir: dir, QueueSize: 8, KeepAlive: -1, Batch: batch})
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close(context.Background())
		// Load first, so the batch window rather than the load gathers them.
		if _, err := r.Generate(context.Background(), "alpha", spec.Request{Prompt: "warm", Steps: 1}); err != nil {
			t.Fatal(err)
		}
		res := make([]spec.Result, len(reqs))
		errs := make(chan error, len(reqs))
		for i, req := range reqs {
			go func() {
				var err error
				res[i], err = r.Generate(context.Background(), "alpha", req)
				errs <- err
			}()
		}
		for range reqs {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
		return res
	}
	batched := run(BatchOptions{MaxBatch: 4, Window: 500 * time.Millisecond})
	alone := run(BatchOptions{MaxBatch: 1})
	for i := range reqs {
		if batched[i].BatchSize != 3 {
			t.Errorf("request %d ran in a batch of %d, want 3", i, batched[i].BatchSize)
		}
		for k := range alone[i].Images {
			if !bytes.Equal(batched[i].Images[k].Image.Pix, alone[i].Images[k].Image.Pix) {
				t.Errorf("request %d image %d differs batched", i, k)
			}
		}
	}
}
