package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sdgate/sdgate/sd/spec"
)

// pull serves one model's stream until ctx ends. Warm (model resident):
// long-poll pulls. Cold: a non-waiting pull, and only once the stream has
// held work for ColdGrace, so resident workers get the first chance.
func (w *Worker) pull(ctx context.Context, model string, stream jetstream.Stream, cons jetstream.Consumer, obj jetstream.ObjectStore) error {
	var waitingSince time.Time
	idle := min(w.opts.PollWait, max(w.opts.ColdGrace/4, 10*time.Millisecond))
	for ctx.Err() == nil {
		cold := !w.run.Loaded(model) && w.opts.ColdGrace > 0
		if cold {
			ready, err := w.coldReady(ctx, cons, &waitingSince)
			if err != nil && w.nc.IsClosed() {
				return fmt.Errorf("dispatch: worker %s: %w", w.opts.ID, nats.ErrConnectionClosed)
			}
			if !ready {
				sleep(ctx, idle)
				continue
			}
		}
		select {
		case w.slot <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		var batch jetstream.MessageBatch
		var err error
		if cold {
			batch, err = cons.FetchNoWait(1)
		} else {
			batch, err = cons.Fetch(1, jetstream.FetchMaxWait(w.opts.PollWait))
		}
		if err == nil {
			for msg := range batch.Messages() {
				w.runJob(ctx, model, msg, obj)
			}
			err = batch.Error()
		}
		<-w.slot
		switch {
		case err == nil || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.Canceled):
		case w.nc.IsClosed():
			return fmt.Errorf("dispatch: worker %s: %w", w.opts.ID, nats.ErrConnectionClosed)
		default:
			w.log.Warn("pull", "model", model, "err", err)
			sleep(ctx, idle)
		}
	}
	return nil
}

// coldReady reports whether the stream has held work (undelivered, or
// delivered and unacknowledged: maybe a dead or stopping worker's) for at
// least ColdGrace. The pull that follows does not wait, so it only takes a
// job no warm worker's waiting pull took: a running job is not
// deliverable, a handed-back or expired one is.
func (w *Worker) coldReady(ctx context.Context, cons jetstream.Consumer, since *time.Time) (bool, error) {
	ictx, cancel := context.WithTimeout(ctx, w.opts.PollWait)
	defer cancel()
	info, err := cons.Info(ictx)
	if err != nil {
		return false, err
	}
	now := time.Now()
	if info.NumPending == 0 && info.NumAckPending == 0 {
		*since = time.Time{}
		return false, nil
	}
	if since.IsZero() {
		*since = now
	}
	return now.Sub(*since) >= w.opts.ColdGrace, nil
}

// runJob runs one delivery of a job and answers it. Order matters: the
// result is delivered (confirmed inline, or stored) before the ack, so a
// worker that dies between the two only causes a duplicate run, with the
// same bytes, that nobody reads.
func (w *Worker) runJob(ctx context.Context, model string, msg jetstream.Msg, obj jetstream.ObjectStore) {
	job, err := decodeJob(msg.Data())
	if err == nil && job.Model != model {
		err = fmt.Errorf("%w: job for %q on the %q stream", ErrBadMessage, job.Model, model)
	}
	if err != nil {
		w.rejected.Add(1)
		w.log.Warn("rejecting a bad job", "model", model, "err", err)
		_ = msg.TermWithReason("bad job message")
		return
	}
	log := w.log.With("job", job.ID, "model", model)
	if meta, err := msg.Metadata(); err == nil && meta.NumDelivered > 1 {
		w.redelivered.Add(1)
		log.Info("redelivered job", "delivery", meta.NumDelivered)
	}
	jobCtx, cancelJob := context.WithCancel(ctx)
	defer cancelJob()
	if d := job.deadline(); !d.IsZero() {
		var cancelDeadline context.CancelFunc
		jobCtx, cancelDeadline = context.WithDeadline(jobCtx, d)
		defer cancelDeadline()
	}
	var clientLeft atomic.Bool
	sub, err := w.nc.Subscribe(cancelSubject(job.ID), func(*nats.Msg) { clientLeft.Store(true); cancelJob() })
	if err != nil {
		log.Warn("subscribe cancel", "err", err)
		_ = msg.Nak()
		return
	}
	defer sub.Unsubscribe()
	stopBeat := w.heartbeat(msg)
	defer stopBeat()

	req := job.request()
	if job.Input != "" {
		err = w.readInput(jobCtx, obj, job, &req)
	}
	lastBeat := time.Now()
	req.Progress = func(step, total int) {
		// One InProgress per step keeps the ack deadline short; throttled
		// for models whose steps take microseconds.
		if now := time.Now(); now.Sub(lastBeat) > w.opts.Queue.AckWait/20 {
			_ = msg.InProgress()
			lastBeat = now
		}
		if data, err := json.Marshal(progressMsg{Step: step, Total: total}); err == nil {
			_ = w.nc.Publish(progressSubject(job.ID), data)
		}
	}
	var res spec.Result
	if err == nil {
		res, err = w.run.Generate(jobCtx, model, req)
	}
	stopBeat()
	switch {
	case ctx.Err() != nil: // this worker is stopping: let another run it
		_ = msg.Nak()
		return
	case clientLeft.Load():
		w.cancelled.Add(1)
		log.Info("job cancelled by its client", "steps_run", res.StepsRun)
		_ = msg.TermWithReason("cancelled")
		return
	}
	blob, encErr := encodeResult(job.ID, w.opts.ID, res, err)
	if encErr != nil {
		blob, _ = encodeResult(job.ID, w.opts.ID, res, encErr)
	}
	pctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := w.deliver(pctx, job.ID, blob, obj); err != nil {
		log.Warn("deliver result", "err", err)
		_ = msg.Nak()
		return
	}
	if err := msg.DoubleAck(pctx); err != nil {
		log.Warn("ack", "err", err)
	}
	w.jobs.Add(1)
	if err != nil {
		w.failed.Add(1)
		log.Info("job failed", "err", err)
	}
}

// inlineWait is how long a worker waits for a gateway to confirm an
// inline result before it stores the result as an object instead.
const inlineWait = 2 * time.Second

// deliver hands a result to the waiting gateway. A result that fits in one
// message goes inline as a request: the gateway's "ok" means it has it, and
// no object is written. Otherwise (too large, or no gateway answered: it
// is reconnecting, or gone) the result is stored as res-<job>, then hinted.
func (w *Worker) deliver(ctx context.Context, job string, blob []byte, obj jetstream.ObjectStore) error {
	if int64(len(blob)) <= w.nc.MaxPayload()-4096 {
		if reply, err := w.nc.Request(resultSubject(job), blob, inlineWait); err == nil && string(reply.Data) == inlineOK {
			return nil
		}
	}
	if _, err := obj.PutBytes(ctx, resultObject(job), blob); err != nil {
		return fmt.Errorf("store result: %w", err)
	}
	_ = w.nc.Publish(resultSubject(job), nil)
	return nil
}

// heartbeat keeps the ack deadline alive between steps (model loads,
// encode, decode); the returned func stops it and may be called twice.
func (w *Worker) heartbeat(msg jetstream.Msg) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(max(w.opts.Queue.AckWait/3, 10*time.Millisecond))
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				_ = msg.InProgress()
			}
		}
	}()
	var once bool
	return func() {
		if !once {
			once = true
			close(done)
			<-stopped
		}
	}
}

func (w *Worker) readInput(ctx context.Context, obj jetstream.ObjectStore, job jobMsg, req *spec.Request) error {
	r, err := obj.Get(ctx, job.Input)
	if err != nil {
		return fmt.Errorf("dispatch: job input: %w", err)
	}
	defer r.Close()
	data, err := io.ReadAll(io.LimitReader(r, maxBlobBytes+1))
	if err != nil {
		return fmt.Errorf("dispatch: read job input: %w", err)
	}
	return decodeInput(job.ID, data, req)
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
