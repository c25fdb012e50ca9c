package main

import (
	"context"
	"errors"
	"flag"
	"io"
	"time"

	"github.com/sdgate/sdgate/dispatch"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/server"
)

type workerFlags struct {
	rt                    runtimeFlags
	nats, modelsDir, id   string
	defaultModel, aliases string
	keepAlive             string
	maxResident, maxQueue int
	ackWait, heartbeat    time.Duration
	coldGrace             time.Duration
	logFormat, logLevel   string
}

func (f *workerFlags) register(fs *flag.FlagSet) {
	f.rt.register(fs)
	fs.StringVar(&f.nats, "nats", "", "NATS server(s) with JetStream, e.g. nats://127.0.0.1:4222 (required)")
	fs.StringVar(&f.modelsDir, "models", "./models", "models directory: one ONNX folder per model")
	fs.StringVar(&f.id, "id", "", "worker id in adverts and logs (default host-pid-random)")
	fs.StringVar(&f.defaultModel, "default-model", "", "model whose tokenizer counts tokens (default: first by id)")
	fs.StringVar(&f.aliases, "aliases", "", "alias=model pairs kept with this worker's models")
	fs.StringVar(&f.keepAlive, "keep-alive", "5m", "unload a model idle this long; never keeps it")
	fs.IntVar(&f.maxResident, "max-resident", 1, "models loaded at once on this GPU")
	fs.IntVar(&f.maxQueue, "max-queue", dispatch.DefaultMaxQueue, "jobs queued per model across the cluster (429 above); give every worker the same")
	fs.DurationVar(&f.ackWait, "ack-wait", dispatch.DefaultAckWait, "a silent worker's job goes to another after this")
	fs.DurationVar(&f.heartbeat, "heartbeat", 2*time.Second, "advert refresh period; 3 missed heartbeats and gateways drop this worker")
	fs.DurationVar(&f.coldGrace, "cold-grace", 2*time.Second, "work waits this long before a worker without the model loaded takes it")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
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
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	aliases, err := parseAliases(f.aliases)
	if err != nil {
		return err
	}
	keepAlive, err := parseKeepAlive(f.keepAlive)
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
	reg, err := models.NewRegistry(models.RegistryOptions{Open: models.OpenWith(rt.OpenPipeline),
		OpenVariant: loraVariantOpener(rt, true, logger), Dir: f.modelsDir, DefaultModel: f.defaultModel,
		Aliases: aliases, DefaultAliases: server.AliasNames(), QueueSize: 1, KeepAlive: keepAlive,
		MaxResident: f.maxResident, Logger: logger})
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
