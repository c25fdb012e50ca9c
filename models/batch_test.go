package models

import (
	"context"
	"errors"
	"fmt"
	"image"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// batchPipeline is a fakePipeline that batches requests of equal Steps.
// hold, when set, blocks the first batch until closed.
type batchPipeline struct {
	fakePipeline
	hold    chan struct{}
	started chan struct{} // closed when the first batch starts
	once    sync.Once
	bmu     sync.Mutex
	sizes   []int
}

var _ BatchPipeline = (*batchPipeline)(nil)

func (p *batchPipeline) BatchKey(req spec.Request) (string, error) {
	return fmt.Sprint(req.Steps), p.Validate(req)
}

func (p *batchPipeline) GenerateBatch(ctx context.Context, items []spec.BatchItem) []spec.BatchResult {
	p.once.Do(func() {
		if p.started != nil {
			close(p.started)
		}
		if p.hold != nil {
			<-p.hold
		}
	})
	p.bmu.Lock()
	p.sizes = append(p.sizes, len(items))
	p.bmu.Unlock()
	out := make([]spec.BatchResult, len(items))
	for i, it := range items {
		if err := it.Cancelled(); err != nil {
			out[i].Err = err
			continue
		}
		img := image.NewRGBA(image.Rect(0, 0, 8, 8))
		out[i].Result = spec.Result{Images: []spec.Image{{Image: img, Seed: it.Request.Seed}}, BatchSize: len(items), Total: time.Millisecond}
	}
	return out
}

func (p *batchPipeline) batchSizes() []int {
	p.bmu.Lock()
	defer p.bmu.Unlock()
	return append([]int(nil), p.sizes...)
}

func batchRegistry(t *testing.T, opts RegistryOptions, settings string) (*Registry, *batchPipeline) {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "m"), 0o755)
	os.WriteFile(filepath.Join(dir, "m", "model_index.json"), []byte(`{}`), 0o644)
	if settings != "" {
		os.WriteFile(filepath.Join(dir, "m", "sdgate.json"), []byte(settings), 0o644)
	}
	var calls []string
	p := &batchPipeline{fakePipeline: fakePipeline{dir: filepath.Join(dir, "m"), log: &calls}}
	opts.Open = OpenWith(func(string) (*batchPipeline, error) { return p, nil })
	opts.Dir, opts.KeepAlive = dir, -1
	r, err := NewRegistry(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r, p
}

// generateAll runs reqs concurrently and returns their results in order.
func generateAll(ctx context.Context, r *Registry, reqs []spec.Request) ([]spec.Result, []error) {
	res, errs := make([]spec.Result, len(reqs)), make([]error, len(reqs))
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i], errs[i] = r.Generate(ctx, "m", req)
		}()
	}
	wg.Wait()
	return res, errs
}

// Requests queued behind a running job join one batch up to max_batch
// images; an incompatible one and the overflow form batches of their own.
func TestBatchingCollectsQueuedRequests(t *testing.T) {
	r, p := batchRegistry(t, RegistryOptions{QueueSize: 8, Batch: BatchOptions{MaxBatch: 4}}, "")
	p.hold, p.started = make(chan struct{}), make(chan struct{})
	first := make(chan error, 1)
	go func() {
		_, err := r.Generate(context.Background(), "m", spec.Request{Steps: 2, Seed: 100})
		first <- err
	}()
	<-p.started
	var reqs []spec.Request
	for i := range 5 {
		reqs = append(reqs, spec.Request{Steps: 2, Seed: uint64(i)})
	}
	reqs[4].N = 2 // 4 images already wait: it opens the next batch
	reqs = append(reqs, spec.Request{Steps: 3, Seed: 9})
	// The four of one image join first (filling a batch), then the rest.
	var res, later []spec.Result
	var errs, laterErrs []error
	done := make(chan struct{})
	go func() { res, errs = generateAll(context.Background(), r, reqs[:4]); close(done) }()
	waitFull(t, r)
	laterDone := make(chan struct{})
	go func() { later, laterErrs = generateAll(context.Background(), r, reqs[4:]); close(laterDone) }()
	waitDepth(t, r.queue, 3)
	close(p.hold)
	<-done
	<-laterDone
	res, errs = append(res, later...), append(errs, laterErrs...)
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	for i, err := range errs {
		if err != nil || res[i].Images[0].Seed != reqs[i].Seed {
			t.Fatalf("request %d: %v %+v", i, err, res[i])
		}
	}
	sizes := map[int]int{}
	for _, n := range p.batchSizes() {
		sizes[n]++
	}
	if sizes[1] != 3 || sizes[4] != 1 {
		t.Errorf("batch sizes %v, want the first, 4 joined, the n=2 one and the 3-step one", p.batchSizes())
	}
	if got := r.Stats().Batches; len(got) != 4 || got[0] != 3 || got[3] != 1 {
		t.Errorf("Stats().Batches = %v", got)
	}
}

// With a window, requests that arrive close together share a batch even
// when the worker is idle.
func TestBatchWindowGathersArrivals(t *testing.T) {
	r, p := batchRegistry(t, RegistryOptions{QueueSize: 8}, `{"max_batch": 3, "batch_window": "300ms"}`)
	reqs := []spec.Request{{Steps: 2, Seed: 1}, {Steps: 2, Seed: 2}, {Steps: 2, Seed: 3}}
	began := time.Now()
	if _, errs := generateAll(context.Background(), r, reqs); errors.Join(errs...) != nil {
		t.Fatal(errs)
	}
	if got := p.batchSizes(); len(got) != 1 || got[0] != 3 {
		t.Errorf("batches %v, want one of 3", got)
	}
	if took := time.Since(began); took > 250*time.Millisecond {
		t.Errorf("a full batch waited out its window: %v", took)
	}
}

// A member that leaves while its batch is queued is taken out; the others run.
func TestBatchMemberLeavesWhileQueued(t *testing.T) {
	r, p := batchRegistry(t, RegistryOptions{QueueSize: 8, Batch: BatchOptions{MaxBatch: 4}}, "")
	p.hold, p.started = make(chan struct{}), make(chan struct{})
	go r.Generate(context.Background(), "m", spec.Request{Steps: 2})
	<-p.started
	ctx, cancel := context.WithCancel(context.Background())
	left := make(chan error, 1)
	go func() { _, err := r.Generate(ctx, "m", spec.Request{Steps: 2, Seed: 1}); left <- err }()
	waitDepth(t, r.queue, 1)
	stay := make(chan error, 1)
	go func() { _, err := r.Generate(context.Background(), "m", spec.Request{Steps: 2, Seed: 2}); stay <- err }()
	time.Sleep(20 * time.Millisecond)
	cancel()
	if err := <-left; !errors.Is(err, context.Canceled) {
		t.Errorf("the leaver got %v", err)
	}
	close(p.hold)
	if err := <-stay; err != nil {
		t.Fatal(err)
	}
	if got := p.batchSizes(); len(got) != 2 || got[1] != 1 {
		t.Errorf("batches %v, want the first and one of 1", got)
	}
}

func TestBatchingOffAndBadSettings(t *testing.T) {
	r, p := batchRegistry(t, RegistryOptions{}, `{"max_batch": 1}`)
	if _, err := r.Generate(context.Background(), "m", spec.Request{Steps: 2}); err != nil {
		t.Fatal(err)
	}
	if len(p.batchSizes()) != 0 {
		t.Error("max_batch 1 still batched")
	}
	for _, bad := range []string{`{"max_batch": 0}`, `{"batch_window": "soon"}`, `{"batch_window": "-1ms"}`} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "m"), 0o755)
		os.WriteFile(filepath.Join(dir, "m", "model_index.json"), []byte(`{}`), 0o644)
		os.WriteFile(filepath.Join(dir, "m", "sdgate.json"), []byte(bad), 0o644)
		var calls []string
		open := func(d string) (*batchPipeline, error) {
			return &batchPipeline{fakePipeline: fakePipeline{dir: d, log: &calls}}, nil
		}
		_, err := NewRegistry(RegistryOptions{Open: OpenWith(open), Dir: dir})
		if err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}

// waitFull waits until the open batch of 2-step requests has filled (and
// left the open batches) while it waits in the queue.
func waitFull(t *testing.T, r *Registry) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r.batches.mu.Lock()
		open := 0
		for _, byKey := range r.batches.pending {
			open += len(byKey)
		}
		r.batches.mu.Unlock()
		if open == 0 && r.queue.Depth() == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("the batch never filled")
		}
		time.Sleep(time.Millisecond)
	}
}
