package dispatch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
)

// Runner is what a worker needs of the model layer: *models.Registry.
type Runner interface {
	Models() []models.Info
	Loaded(id string) bool
	Stats() models.Stats
	Generate(ctx context.Context, id string, req spec.Request) (spec.Result, error)
}

var _ Runner = (*models.Registry)(nil)

// WorkerOptions configure a Worker; zero values mean the defaults.
type WorkerOptions struct {
	// ID names the worker in adverts and logs (default host-pid-random);
	// characters outside [A-Za-z0-9_-] are escaped.
	ID     string
	Logger *slog.Logger
	Queue  QueueConfig
	// Heartbeat is how often the advert is refreshed (default 2s); a
	// worker silent for 3 heartbeats is dead to the gateways.
	Heartbeat time.Duration
	// ColdGrace is how long work must wait in a stream before a worker
	// that would have to load the model pulls it (default 2s).
	ColdGrace time.Duration
	// PollWait bounds one pull request (default 1s).
	PollWait time.Duration
	// ResultTTL keeps result objects the gateway has not read (default 15m).
	ResultTTL time.Duration
}

// WorkerStats count what a worker did.
type WorkerStats struct {
	Jobs, Failed, Cancelled, Redelivered, Rejected uint64
}

// Worker pulls jobs for the models its Runner serves, one at a time (one
// GPU), and answers them through the object store.
type Worker struct {
	nc   *nats.Conn
	js   jetstream.JetStream
	run  Runner
	opts WorkerOptions
	log  *slog.Logger
	slot chan struct{} // held while fetching or running: one job at a time

	jobs, failed, cancelled, redelivered, rejected atomic.Uint64
}

// NewWorker prepares a worker; Run starts it. nc stays the caller's.
func NewWorker(nc *nats.Conn, run Runner, opts WorkerOptions) (*Worker, error) {
	if nc == nil || run == nil {
		return nil, errors.New("dispatch: worker needs a NATS connection and a runner")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ID == "" {
		host, _ := os.Hostname()
		opts.ID = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), newJobID()[:6])
	}
	opts.ID = Token(opts.ID)
	opts.Queue.fill()
	if opts.Heartbeat <= 0 {
		opts.Heartbeat = 2 * time.Second
	}
	if opts.ColdGrace < 0 {
		opts.ColdGrace = 0
	} else if opts.ColdGrace == 0 {
		opts.ColdGrace = 2 * time.Second
	}
	if opts.PollWait <= 0 {
		opts.PollWait = time.Second
	}
	if opts.ResultTTL <= 0 {
		opts.ResultTTL = DefaultResultTTL
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("dispatch: jetstream: %w", err)
	}
	return &Worker{nc: nc, js: js, run: run, opts: opts, log: opts.Logger.With("worker", opts.ID),
		slot: make(chan struct{}, 1)}, nil
}

// ID is the worker's advertised id.
func (w *Worker) ID() string { return w.opts.ID }

// Stats are the worker's counters.
func (w *Worker) Stats() WorkerStats {
	return WorkerStats{Jobs: w.jobs.Load(), Failed: w.failed.Load(), Cancelled: w.cancelled.Load(),
		Redelivered: w.redelivered.Load(), Rejected: w.rejected.Load()}
}

// Run advertises the worker and serves jobs until ctx ends (then it
// withdraws its advert and returns nil) or the connection closes.
func (w *Worker) Run(ctx context.Context) error {
	obj, err := ensureResults(ctx, w.js, w.opts.ResultTTL)
	if err != nil {
		return err
	}
	kv, err := ensureWorkers(ctx, w.js, time.Minute)
	if err != nil {
		return err
	}
	started := time.Now()
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	pullers := map[string]context.CancelFunc{}
	errc := make(chan error, 1)
	reconcile := func() error {
		served := map[string]bool{}
		for _, m := range w.run.Models() {
			served[m.ID] = true
			if _, ok := pullers[m.ID]; ok {
				continue
			}
			stream, cons, err := ensureQueue(runCtx, w.js, m.ID, w.opts.Queue)
			if err != nil {
				return err
			}
			pctx, cancel := context.WithCancel(runCtx)
			pullers[m.ID] = cancel
			wg.Add(1)
			go func(id string) {
				defer wg.Done()
				if err := w.pull(pctx, id, stream, cons, obj); err != nil {
					select {
					case errc <- err:
					default:
					}
				}
			}(m.ID)
		}
		for id, cancel := range pullers {
			if !served[id] {
				cancel()
				delete(pullers, id)
			}
		}
		return w.advertise(runCtx, kv, started)
	}
	defer func() {
		stop()
		wg.Wait()
		// Withdraw at once so gateways stop routing here.
		dctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := kv.Delete(dctx, w.opts.ID); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			w.log.Warn("withdraw advert", "err", err)
		}
	}()
	if err := reconcile(); err != nil {
		return err
	}
	w.log.Info("worker serving", "models", len(pullers))
	tick := time.NewTicker(w.opts.Heartbeat)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-tick.C:
			if err := reconcile(); err != nil {
				if w.nc.IsClosed() {
					return fmt.Errorf("dispatch: worker %s: %w", w.opts.ID, nats.ErrConnectionClosed)
				}
				w.log.Warn("heartbeat", "err", err)
			}
		}
	}
}

func (w *Worker) advertise(ctx context.Context, kv jetstream.KeyValue, started time.Time) error {
	ad := advert{V: wireVersion, Worker: w.opts.ID, Started: started,
		TTLms: (3 * w.opts.Heartbeat).Milliseconds(), Models: w.run.Models(), Stats: w.run.Stats(),
		Busy: len(w.slot) > 0}
	ad.Host, _ = os.Hostname()
	for _, m := range ad.Models {
		if w.run.Loaded(m.ID) {
			ad.Resident = append(ad.Resident, m.ID)
		}
	}
	slices.Sort(ad.Resident)
	data, err := json.Marshal(ad)
	if err != nil {
		return fmt.Errorf("dispatch: encode advert: %w", err)
	}
	if _, err := kv.Put(ctx, w.opts.ID, data); err != nil {
		return fmt.Errorf("dispatch: advertise: %w", err)
	}
	return nil
}
