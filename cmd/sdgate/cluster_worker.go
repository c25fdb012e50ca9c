package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/sdgate/sdgate/dispatch"
)

type workerFlags struct {
	rt                 runtimeFlags
	models             modelFlags
	log                logFlags
	nats, id           string
	maxQueue           int
	ackWait, heartbeat time.Duration
	coldGrace          time.Duration
}

func (f *workerFlags) register(fs *flag.FlagSet) {
	f.rt.register(fs)
	fs.StringVar(&f.nats, "nats", "", "NATS server(s) with JetStream, e.g. nats://127.0.0.1:4222 (required)")
	f.models.register(fs)
	fs.StringVar(&f.id, "id", "", "worker id in adverts and logs (default host-pid-random)")
	fs.IntVar(&f.maxQueue, "max-queue", dispatch.DefaultMaxQueue, "jobs queued per model across the cluster (429 above); give every worker the same")
	fs.DurationVar(&f.ackWait, "ack-wait", dispatch.DefaultAckWait, "a silent worker's job goes to another after this")
	fs.DurationVar(&f.heartbeat, "heartbeat", 2*time.Second, "advert refresh period; 3 missed heartbeats and gateways drop this worker")
	fs.DurationVar(&f.coldGrace, "cold-grace", 2*time.Second, "work waits this long before a worker without the model loaded takes it")
	f.log.register(fs)
}

// runWorker owns one GPU (--device cuda:N): it advertises the models in
// --models and runs the jobs the gateways publish for them.
func runWorker(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("worker", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f workerFlags
	f.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if f.nats == "" {
		return errors.New("worker: --nats is required")
	}
	logger, err := f.log.logger(stderr)
	if err != nil {
		return err
	}
	regOpts, err := f.models.registry(logger)
	if err != nil {
		return err
	}
	rt, err := f.rt.start(logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	// The registry's own queue only ever holds the job being run: the
	// worker pulls one at a time, and the cluster's queue is JetStream.
	regOpts.QueueSize = 1
	reg, err := openRegistry(regOpts, rt, true)
	if err != nil {
		return err
	}
	defer reg.Close(context.Background())
	nc, err := connectNATS(f.nats, "sdgate-worker", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	w, err := dispatch.NewWorker(nc, reg, dispatch.WorkerOptions{ID: f.id, Logger: logger, Heartbeat: f.heartbeat,
		ColdGrace: f.coldGrace, Queue: dispatch.QueueConfig{MaxQueue: f.maxQueue, AckWait: f.ackWait}})
	if err != nil {
		return err
	}
	if err := sdNotify(getenv("NOTIFY_SOCKET"), "READY=1"); err != nil {
		logger.Warn("sd_notify", "err", err)
	}
	logger.Info("worker starting", "id", w.ID(), "models", len(reg.Models()))
	return w.Run(ctx)
}
