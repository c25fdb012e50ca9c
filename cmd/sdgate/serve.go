package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/server"
)

type serveFlags struct {
	rt           runtimeFlags
	api          apiFlags
	models       modelFlags
	keys         keyFlags
	log          logFlags
	cache        cacheFlags
	config       string
	dataDir      string
	queueSize    int
	queueTimeout time.Duration
	loraStrict   bool
	maxBatch     int
	batchWindow  time.Duration
	printConfig  bool
	urlStore     string
	rateRedis    string
	postgres     string
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.rt.register(fs)
	fs.StringVar(&f.config, "config", "", "JSON config file (keys are flag names); flags and SDGATE_* win over it")
	f.api.register(fs)
	f.models.register(fs)
	fs.StringVar(&f.dataDir, "data", "./data", "data directory (key store, usage)")
	fs.IntVar(&f.queueSize, "queue-size", 16, "requests that may wait for the GPU; more get 429 at once")
	fs.DurationVar(&f.queueTimeout, "queue-timeout", 2*time.Minute, "longest wait in the queue before 503")
	fs.BoolVar(&f.loraStrict, "lora-strict", true, "a LoRA module that matches no weight of its model fails the load (false: logged)")
	fs.IntVar(&f.maxBatch, "max-batch", models.DefaultMaxBatch, "images of compatible requests run as one batched UNet call per step; 1 turns batching off (sdgate.json max_batch wins)")
	fs.DurationVar(&f.batchWindow, "batch-window", models.DefaultBatchWindow, "how long a batch waits for compatible requests before it starts; 0 waits not at all (sdgate.json batch_window wins)")
	f.log.register(fs)
	fs.BoolVar(&f.printConfig, "print-config", false, "print the effective configuration (secrets masked) and exit")
	f.keys.register(fs)
	f.cache.register(fs)
	fs.StringVar(&f.cache.redis, "cache-redis", "", "share the result cache in Redis: redis://host:6379/0")
	f.cache.redisFlag = "--cache-redis"
	fs.StringVar(&f.postgres, "postgres", "", "keys, quotas and usage in PostgreSQL, shared by gateways, instead of --data: postgres://user@host/db")
	fs.StringVar(&f.rateRedis, "rate-limit-redis", "", "share per-minute rate limits between gateways in Redis: redis://host:6379/0 (default: per process)")
	fs.StringVar(&f.urlStore, "url-store", "", "keep response_format=url images in Redis, shared by gateways: redis://host:6379/0 (default: in memory)")
}

// openGate opens the key store (SQLite in --data, or --postgres) behind
// the gate.
func openGate(ctx context.Context, f serveFlags, logger *slog.Logger) (*auth.Gate, func(), error) {
	if err := f.keys.check(); err != nil {
		return nil, nil, err
	}
	limiter, closeLimiter, err := openRateLimiter(ctx, "--rate-limit-redis", f.rateRedis)
	if err != nil {
		return nil, nil, err
	}
	store, err := openKeyStore(ctx, f.dataDir, f.postgres)
	if err != nil {
		closeLimiter()
		return nil, nil, err
	}
	closeStore := func() { store.Close(); closeLimiter() }
	where := "--data " + f.dataDir
	if f.postgres != "" {
		where = "--postgres DSN"
	}
	gate, err := f.keys.newGate(ctx, store, limiter, logger, where)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return gate, closeStore, nil
}

// cacheFlags: the result cache (in memory, or in Redis when redis is set).
type cacheFlags struct {
	bytes       int64
	promptCache bool
	redis       string
	redisFlag   string // the flag that named redis, for errors
	ttl         time.Duration
}

func (f *cacheFlags) register(fs *flag.FlagSet) {
	fs.Int64Var(&f.bytes, "cache-bytes", 0, "result cache size in bytes (0: 1/8 of RAM, at most 8 GiB; -1: no cache)")
	fs.BoolVar(&f.promptCache, "prompt-cache", false, "also cache requests without a seed (repeated prompts get the image and seed made first)")
	fs.DurationVar(&f.ttl, "cache-ttl", 24*time.Hour, "how long Redis keeps a cached result")
}

// openCache builds the result cache: in memory by default, in Redis when
// one is named; nil with --cache-bytes -1.
func openCache(f cacheFlags, logger *slog.Logger) (*cache.Cache, func(), error) {
	var store cache.Store
	closeStore := func() {}
	switch {
	case f.redis != "":
		r, err := cache.NewRedis(cache.RedisOptions{URL: f.redis, TTL: f.ttl})
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", f.redisFlag, err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Ping(ctx); err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("%s %s: %w", f.redisFlag, f.redis, err)
		}
		store, closeStore = r, func() { r.Close() }
	case f.bytes < 0:
		return nil, closeStore, nil
	default:
		size := f.bytes
		if size == 0 {
			size = cache.DefaultMaxBytes()
		}
		m, err := cache.NewMemory(size)
		if err != nil {
			return nil, nil, err
		}
		store = m
	}
	c, err := cache.New(store, cache.Options{PromptCaching: f.promptCache, Logger: logger})
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	return c, closeStore, nil
}

func runServe(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f serveFlags
	f.register(fs)
	if err := parseWithConfig(fs, args, getenv); err != nil {
		return err
	}
	if f.printConfig {
		printConfig(stdout, fs, args, getenv)
		return nil
	}
	logger, err := f.log.logger(stderr)
	if err != nil {
		return err
	}
	regOpts, err := f.models.registry(logger)
	if err != nil {
		return err
	}
	if err := f.api.check(); err != nil {
		return err
	}
	if err := f.keys.check(); err != nil {
		return err
	}

	rt, err := f.rt.start(logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	regOpts.QueueSize, regOpts.QueueMaxWait = f.queueSize, f.queueTimeout
	regOpts.Batch = models.BatchOptions{MaxBatch: f.maxBatch, Window: f.batchWindow}
	reg, err := openRegistry(regOpts, rt, f.loraStrict)
	if err != nil {
		return err
	}
	defer reg.Close(context.Background())
	gate, closeGate, err := openGate(ctx, f, logger)
	if err != nil {
		return err
	}
	defer closeGate()
	resultCache, closeCache, err := openCache(f.cache, logger)
	if err != nil {
		return err
	}
	defer closeCache()
	imageStore, closeImages, err := openURLStore(ctx, "--url-store", f.urlStore, f.api.imageTTL)
	if err != nil {
		return err
	}
	defer closeImages()
	dev, _ := rt.Device()
	srv, err := server.New(reg, f.api.options(server.Options{
		Logger: logger, Gate: gate, NoAuth: f.keys.noAuth, Cache: resultCache, Admin: reg, ImageStore: imageStore,
		Engine: "sdgate-" + buildVersion() + "/ort-" + rt.Version() + "/" + dev.String(),
	}))
	if err != nil {
		return err
	}
	defer srv.Close()
	rescan := func() {
		if err := reg.Rescan(); err != nil {
			logger.Error("rescan", "err", err)
			return
		}
		logger.Info("rescanned models", "models", len(reg.Models()), "broken", len(reg.Broken()))
	}
	return f.api.serve(ctx, srv, logger, getenv, serveHooks{hup: rescan, stopWork: reg.Close,
		started: []any{"models", len(reg.Models()), "default", reg.DefaultModel()}})
}
