package dispatch

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// Generate publishes req as a job on model's stream and waits for a worker's
// result. The seed is fixed here, so whichever worker runs the job, and
// however often, the pixels are the same. A context that ends cancels the
// job: it is deleted from the stream if still queued, and the worker
// running it stops within one step.
func (g *Gateway) Generate(ctx context.Context, modelID string, req spec.Request) (spec.Result, error) {
	if g.liveWorkers(modelID) == 0 {
		return spec.Result{}, fmt.Errorf("%w: %s", ErrNoWorker, modelID)
	}
	if !req.HasSeed {
		req.Seed, req.HasSeed = spec.RandomSeed(), true
	}
	id := newJobID()
	start := g.opts.Now()
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = start.Add(g.opts.MaxWait)
	}
	waitCtx, cancel := context.WithDeadline(ctx, deadline)
	defer cancel()

	// Subscribe before publishing: on one connection the server sees the
	// subscriptions first, so no progress or hint can come too early.
	progress := make(chan *nats.Msg, 256)
	hint := make(chan *nats.Msg, 4)
	ps, err := g.nc.ChanSubscribe(progressSubject(id), progress)
	if err != nil {
		return spec.Result{}, fmt.Errorf("dispatch: subscribe progress: %w", err)
	}
	defer ps.Unsubscribe()
	hs, err := g.nc.ChanSubscribe(resultSubject(id), hint)
	if err != nil {
		return spec.Result{}, fmt.Errorf("dispatch: subscribe results: %w", err)
	}
	defer hs.Unsubscribe()

	msg := newJobMsg(id, modelID, req, deadline)
	if msg.Input != "" {
		blob, err := encodeInput(id, req)
		if err != nil {
			return spec.Result{}, err
		}
		if _, err := g.obj.PutBytes(waitCtx, msg.Input, blob); err != nil {
			return spec.Result{}, fmt.Errorf("dispatch: store job input: %w", err)
		}
		defer g.deleteObject(msg.Input)
	}
	data, err := json.Marshal(msg)
	if err != nil {
		return spec.Result{}, fmt.Errorf("dispatch: encode job: %w", err)
	}
	ack, err := g.js.Publish(waitCtx, jobSubject(modelID), data,
		jetstream.WithMsgID(id), jetstream.WithExpectStream(streamName(modelID)))
	if err != nil {
		return spec.Result{}, g.publishError(modelID, err)
	}

	poll := time.NewTicker(g.opts.ResultPoll)
	defer poll.Stop()
	for {
		select {
		case m := <-progress:
			if p, err := decodeProgress(m.Data); err == nil && req.Progress != nil {
				req.Progress(p.Step, p.Total)
			}
			continue
		case m := <-hint:
			if len(m.Data) > 0 { // an inline result
				res, _, err := decodeResult(id, m.Data)
				if errors.Is(err, ErrBadMessage) {
					g.log.Warn("bad inline result", "job", id, "err", err)
					continue // the worker falls back to the object store
				}
				_ = m.Respond([]byte(inlineOK))
				return g.finish(start, res, err)
			}
		case <-poll.C:
		case <-waitCtx.Done():
			g.abandon(modelID, id, ack.Sequence)
			if err := ctx.Err(); err != nil {
				return spec.Result{}, err
			}
			return spec.Result{}, fmt.Errorf("%w: no worker finished job %s for %s in time", context.DeadlineExceeded, id, modelID)
		}
		res, found, err := g.fetchResult(waitCtx, id)
		if !found {
			continue
		}
		return g.finish(start, res, err)
	}
}

// inlineOK is the gateway's answer to an inline result it has taken.
const inlineOK = "ok"

// finish records a job's round trip and fills in the gateway's view of the
// wait: everything but the run.
func (g *Gateway) finish(start time.Time, res spec.Result, err error) (spec.Result, error) {
	if err == nil {
		elapsed := g.opts.Now().Sub(start)
		g.observe(elapsed)
		res.QueueWait = max(elapsed-res.Total-res.ModelLoad, 0)
	}
	return res, err
}

// fetchResult reads and deletes job's result object; found is false while
// no worker has written it.
func (g *Gateway) fetchResult(ctx context.Context, id string) (spec.Result, bool, error) {
	obj, err := g.obj.Get(ctx, resultObject(id))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return spec.Result{}, false, nil
	}
	if err != nil {
		g.log.Warn("read result object", "job", id, "err", err)
		return spec.Result{}, false, nil
	}
	defer obj.Close()
	info, err := obj.Info()
	if err != nil || info.Size > maxBlobBytes {
		return spec.Result{}, true, fmt.Errorf("%w: result object of %d bytes", ErrBadMessage, infoSize(info))
	}
	data, err := io.ReadAll(io.LimitReader(obj, maxBlobBytes+1))
	if err != nil {
		return spec.Result{}, true, fmt.Errorf("dispatch: read result: %w", err)
	}
	g.deleteObject(resultObject(id))
	res, worker, err := decodeResult(id, data)
	g.log.Debug("job done", "job", id, "worker", worker, "err", err)
	return res, true, err
}

func infoSize(info *jetstream.ObjectInfo) uint64 {
	if info == nil {
		return 0
	}
	return info.Size
}

// publishError classifies a refused publish: a full stream is a 429 with an
// estimate of when a slot frees; a missing stream means no worker ever
// declared the model.
func (g *Gateway) publishError(model string, err error) error {
	var api *jetstream.APIError
	if errors.As(err, &api) && api.ErrorCode == 10077 && strings.Contains(api.Description, "maximum") {
		return &models.QueueFullError{Waiting: g.depthOf(model), RetryAfter: g.retryAfter(model)}
	}
	if errors.Is(err, jetstream.ErrStreamNotFound) || errors.Is(err, jetstream.ErrNoStreamResponse) {
		return fmt.Errorf("%w: %s (no job stream: %w)", ErrNoWorker, model, err)
	}
	return fmt.Errorf("dispatch: publish job for %s: %w", model, err)
}

// abandon cancels a job whose client left or whose deadline passed:
// delete it if still queued, tell a worker running it to stop.
func (g *Gateway) abandon(model, id string, seq uint64) {
	if err := g.nc.Publish(cancelSubject(id), nil); err != nil {
		g.log.Warn("publish cancel", "job", id, "err", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if s, err := g.js.Stream(ctx, streamName(model)); err == nil {
		// Fails harmlessly when a worker already acknowledged it.
		_ = s.DeleteMsg(ctx, seq)
	}
	g.deleteObject(resultObject(id))
}

func (g *Gateway) deleteObject(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := g.obj.Delete(ctx, name); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
		g.log.Warn("delete object", "name", name, "err", err)
	}
}

// observe feeds the moving average of job round trips.
func (g *Gateway) observe(d time.Duration) {
	old := g.jobNanos.Load()
	if old == 0 {
		g.jobNanos.Store(int64(d))
		return
	}
	g.jobNanos.Store(old + (int64(d)-old)/8)
}

// retryAfter estimates when a slot frees: one average job spread over the
// model's live workers; 0 (the server's default) before any job ran.
func (g *Gateway) retryAfter(model string) time.Duration {
	avg := time.Duration(g.jobNanos.Load())
	if avg <= 0 {
		return 0
	}
	return avg / time.Duration(max(g.liveWorkers(model), 1))
}

func (g *Gateway) depthOf(model string) int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.depth[model]
}

func newJobID() string {
	var b [16]byte
	rand.Read(b[:]) // never fails: crypto/rand crashes the program instead
	return hex.EncodeToString(b[:])
}
