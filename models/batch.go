package models

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// BatchPipeline is a Pipeline that can run compatible requests as one
// batched UNet call per step (sd.Pipeline is one). Requests with equal
// BatchKey are compatible.
type BatchPipeline interface {
	Pipeline
	BatchKey(req spec.Request) (string, error)
	GenerateBatch(ctx context.Context, items []spec.BatchItem) []spec.BatchResult
}

// BatchOptions tune dynamic batching for the models that allow it; a
// folder's sdgate.json (max_batch, batch_window) overrides them.
type BatchOptions struct {
	// MaxBatch bounds the images of one batch (the sum of the requests' n);
	// 0 means DefaultMaxBatch, 1 turns batching off.
	MaxBatch int
	// Window is how long a batch that could still grow waits for
	// compatible requests before it starts, counted from its first request;
	// 0 starts it as soon as the worker takes it (it still collects every
	// compatible request that arrived while it was queued).
	Window time.Duration
}

// Defaults, from the batching table in docs/performance.md: on a GPU a
// UNet call on 4 images costs little more than one; on CPU batching gains
// little, and a short window keeps the first request's latency.
const (
	DefaultMaxBatch    = 4
	DefaultBatchWindow = 5 * time.Millisecond
)

// pendingBatch collects compatible requests until the worker starts it.
// Join policy: a request joins a batch only while it waits in the queue;
// once its denoising loop has begun, newcomers form the next batch (all
// rows of a UNet call share one timestep, so joining mid-loop would need
// matching step indices; see docs/performance.md).
type pendingBatch struct {
	entry   *entry
	key     string
	created time.Time
	images  int
	members []*batchMember
	sealed  bool          // started: no more joins
	full    chan struct{} // closed when images reaches the limit
}

// batchMember is one caller waiting on a batch. Its ctx stays with the
// caller: cancelled reports why it left.
type batchMember struct {
	req       spec.Request
	cancelled func() error
	queued    time.Time
	once      sync.Once
	done      chan struct{}
	res       spec.Result
	err       error
}

func (m *batchMember) finish(res spec.Result, err error) {
	m.once.Do(func() {
		m.res, m.err = res, err
		close(m.done)
	})
}

// batcher holds the batches not yet started, one per (model, key).
type batcher struct {
	mu      sync.Mutex
	pending map[*entry]map[string]*pendingBatch
}

// join adds m to the open batch for e and key, or opens one; first
// reports a new batch, which the caller must submit.
func (b *batcher) join(e *entry, key string, m *batchMember, limit int) (pb *pendingBatch, first bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := max(m.req.N, 1)
	if pb = b.pending[e][key]; pb != nil && pb.images+n <= limit {
		pb.members = append(pb.members, m)
		pb.images += n
		if pb.images >= limit {
			close(pb.full)
			delete(b.pending[e], key) // full: the next request opens another
		}
		return pb, false
	}
	pb = &pendingBatch{entry: e, key: key, created: time.Now(), images: n, members: []*batchMember{m}, full: make(chan struct{})}
	if n >= limit {
		close(pb.full)
	} else {
		if b.pending == nil {
			b.pending = map[*entry]map[string]*pendingBatch{}
		}
		if b.pending[e] == nil {
			b.pending[e] = map[string]*pendingBatch{}
		}
		b.pending[e][key] = pb
	}
	return pb, true
}

// leave takes m out of a batch that has not started; false if it has.
func (b *batcher) leave(pb *pendingBatch, m *batchMember) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if pb.sealed {
		return false
	}
	for i, x := range pb.members {
		if x == m {
			pb.members = append(pb.members[:i], pb.members[i+1:]...)
			pb.images -= max(m.req.N, 1)
			return true
		}
	}
	return false
}

// seal stops pb taking members (after waiting out its window, unless it
// fills first) and returns them.
func (b *batcher) seal(pb *pendingBatch, window time.Duration) []*batchMember {
	if wait := time.Until(pb.created.Add(window)); wait > 0 {
		timer := time.NewTimer(wait)
		select {
		case <-timer.C:
		case <-pb.full:
		}
		timer.Stop()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	pb.sealed = true
	if b.pending[pb.entry][pb.key] == pb {
		delete(b.pending[pb.entry], pb.key)
	}
	return append([]*batchMember(nil), pb.members...)
}

// generateBatched queues req to run in a batch of compatible requests.
func (r *Registry) generateBatched(ctx context.Context, e *entry, p BatchPipeline, key string, req spec.Request) (spec.Result, error) {
	m := &batchMember{req: req, queued: time.Now(), done: make(chan struct{}),
		cancelled: func() error {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return nil
		}}
	pb, first := r.batches.join(e, key, m, e.maxBatch)
	if first {
		// The batch outlives any one member: its queue job keeps ctx's
		// values (the caller's key, for fairness) but not its cancellation.
		go r.submitBatch(context.WithoutCancel(ctx), p, pb)
	}
	select {
	case <-m.done:
	case <-ctx.Done():
		if r.batches.leave(pb, m) {
			return spec.Result{}, skipped(ctx)
		}
		<-m.done // running: the pipeline drops it within a step
	}
	return m.res, m.err
}

// submitBatch runs pb on the worker and hands each member its result.
func (r *Registry) submitBatch(ctx context.Context, p BatchPipeline, pb *pendingBatch) {
	e := pb.entry
	// Members hear back once the worker is free again, so a caller that
	// sends its next request at once finds the queue as it left it.
	var members []*batchMember
	var results []spec.BatchResult
	var loadTime time.Duration
	err := r.queue.Do(ctx, func(ctx context.Context) error {
		started := time.Now()
		if !r.acquire(e) {
			return fmt.Errorf("%w: %s (removed by a rescan while queued)", ErrModelNotFound, e.info.ID)
		}
		defer r.release(e)
		var err error
		if loadTime, err = r.ensureLoaded(ctx, e); err != nil {
			return err
		}
		members = r.batches.seal(pb, e.batchWindow)
		if len(members) == 0 {
			return nil // everyone left while it was queued
		}
		items := make([]spec.BatchItem, len(members))
		for i, m := range members {
			items[i] = spec.BatchItem{Request: m.req, Cancelled: m.cancelled}
		}
		results = p.GenerateBatch(ctx, items)
		if len(results) > 0 && errors.Is(results[0].Err, spec.ErrNotLoaded) {
			// Unloaded by the keep-alive janitor since the check: reload.
			if loadTime, err = r.ensureLoaded(ctx, e); err != nil {
				return err
			}
			results = p.GenerateBatch(ctx, items)
		}
		if len(results) != len(members) {
			return fmt.Errorf("pipeline answered %d results for a batch of %d", len(results), len(members))
		}
		r.batchSizes.observe(len(members))
		for i, m := range members {
			results[i].Result.ModelLoad, results[i].Result.QueueWait = loadTime, started.Sub(m.queued)
		}
		return nil
	})
	if err != nil { // never ran (queue full, timeout, closed, load failed)
		for _, m := range r.batches.seal(pb, 0) {
			m.finish(spec.Result{}, err)
		}
		return
	}
	for i, m := range members {
		m.finish(results[i].Result, results[i].Err)
	}
}

// BatchSizes counts batches by their number of requests: index i holds
// the batches of i+1 requests (the last entry, those of len or more).
type BatchSizes []uint64

type batchSizeCounter struct {
	mu     sync.Mutex
	counts BatchSizes
}

func (c *batchSizeCounter) observe(n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for len(c.counts) < n {
		c.counts = append(c.counts, 0)
	}
	c.counts[n-1]++
}

func (c *batchSizeCounter) snapshot() BatchSizes {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append(BatchSizes(nil), c.counts...)
}

// batching reads a folder's batching settings over the defaults.
func (fs folderSettings) batching(def BatchOptions) (int, time.Duration, error) {
	maxBatch, window := def.MaxBatch, def.Window
	if fs.MaxBatch != nil {
		if *fs.MaxBatch < 1 || *fs.MaxBatch > spec.MaxImages*4 {
			return 0, 0, fmt.Errorf("max_batch %d: want 1..%d (1 turns batching off)", *fs.MaxBatch, spec.MaxImages*4)
		}
		maxBatch = *fs.MaxBatch
	}
	if fs.BatchWindow != "" {
		d, err := time.ParseDuration(fs.BatchWindow)
		if err != nil || d < 0 || d > time.Second {
			return 0, 0, fmt.Errorf("batch_window %q: want a duration from 0s to 1s, such as 5ms", fs.BatchWindow)
		}
		window = d
	}
	return maxBatch, window, nil
}
