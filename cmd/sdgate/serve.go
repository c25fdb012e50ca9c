package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/server"
)

type serveFlags struct {
	rt           runtimeFlags
	config       string
	addr         string
	modelsDir    string
	dataDir      string
	defaultModel string
	aliases      string
	queueSize    int
	queueTimeout time.Duration
	keepAlive    string
	maxResident  int
	loraStrict   bool
	maxBatch     int
	batchWindow  time.Duration
	publicURL    string
	imageTTL     time.Duration
	bodyLimit    int64
	drain        time.Duration
	logFormat    string
	logLevel     string
	printConfig  bool
	noAuth       bool
	noLimits     bool
	defaultRPM   int
	defaultIPM   int
	apiKeys      string
	cacheBytes   int64
	promptCache  bool
	cacheRedis   string
	cacheTTL     time.Duration
	urlStore     string
	rateRedis    string
	postgres     string
	rateClosed   bool
	net          netFlags
	admission    admissionFlags
}

func (f *serveFlags) register(fs *flag.FlagSet) {
	f.rt.register(fs)
	fs.StringVar(&f.config, "config", "", "JSON config file (keys are flag names); flags and SDGATE_* win over it")
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.modelsDir, "models", "./models", "models directory: one optimum/diffusers ONNX folder per model")
	fs.StringVar(&f.dataDir, "data", "./data", "data directory (key store, usage)")
	fs.StringVar(&f.defaultModel, "default-model", "", "model id behind unmapped aliases (default: first by id)")
	fs.StringVar(&f.aliases, "aliases", "", "alias=model pairs, e.g. dall-e-3=sd15,gpt-image-1=sd15")
	fs.IntVar(&f.queueSize, "queue-size", 16, "requests that may wait for the GPU; more get 429 at once")
	fs.DurationVar(&f.queueTimeout, "queue-timeout", 2*time.Minute, "longest wait in the queue before 503")
	fs.StringVar(&f.keepAlive, "keep-alive", "5m", "unload a model idle this long; never keeps it")
	fs.IntVar(&f.maxResident, "max-resident", 1, "models loaded at once; the least recently used idle one makes room")
	fs.BoolVar(&f.loraStrict, "lora-strict", true, "a LoRA module that matches no weight of its model fails the load (false: logged)")
	fs.IntVar(&f.maxBatch, "max-batch", models.DefaultMaxBatch, "images of compatible requests run as one batched UNet call per step; 1 turns batching off (sdgate.json max_batch wins)")
	fs.DurationVar(&f.batchWindow, "batch-window", models.DefaultBatchWindow, "how long a batch waits for compatible requests before it starts; 0 waits not at all (sdgate.json batch_window wins)")
	fs.StringVar(&f.publicURL, "public-url", "", "scheme://host[:port] clients reach us at, for image URLs (default: from X-Forwarded-*/Host)")
	fs.DurationVar(&f.imageTTL, "image-ttl", time.Hour, "how long response_format=url images stay")
	fs.Int64Var(&f.bodyLimit, "body-limit", 1<<20, "largest JSON request body in bytes (413 above)")
	fs.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "on SIGTERM, time to finish in-flight requests before cancelling them")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.printConfig, "print-config", false, "print the effective configuration (secrets masked) and exit")
	fs.BoolVar(&f.noAuth, "no-auth", false, "serve without API keys (requests are still metered)")
	fs.IntVar(&f.defaultRPM, "requests-per-minute", auth.DefaultRequestsPerMinute, "rate limit of keys created without their own (x-ratelimit-*-requests headers)")
	fs.IntVar(&f.defaultIPM, "images-per-minute", auth.DefaultImagesPerMinute, "image rate limit of keys created without their own (x-ratelimit-*-images headers)")
	fs.BoolVar(&f.noLimits, "no-limits", false, "no default rate limits (a private box): keys without their own are unlimited and get no x-ratelimit-* headers")
	fs.StringVar(&f.apiKeys, "api-keys", "", "extra keys, [NAME:]sk-...[:admin] separated by commas (SDGATE_API_KEYS)")
	fs.Int64Var(&f.cacheBytes, "cache-bytes", 0, "result cache size in bytes (0: 1/8 of RAM, at most 8 GiB; -1: no cache)")
	fs.BoolVar(&f.promptCache, "prompt-cache", false, "also cache requests without a seed (repeated prompts get the image and seed made first)")
	fs.StringVar(&f.cacheRedis, "cache-redis", "", "share the result cache in Redis: redis://host:6379/0")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", 24*time.Hour, "how long Redis keeps a cached result")
	fs.StringVar(&f.postgres, "postgres", "", "keys, quotas and usage in PostgreSQL, shared by gateways, instead of --data: postgres://user@host/db")
	fs.StringVar(&f.rateRedis, "rate-limit-redis", "", "share per-minute rate limits between gateways in Redis: redis://host:6379/0 (default: per process)")
	fs.BoolVar(&f.rateClosed, "rate-limit-fail-closed", false, "answer 503 while the rate-limit Redis is down (default: limit per process meanwhile)")
	fs.StringVar(&f.urlStore, "url-store", "", "keep response_format=url images in Redis, shared by gateways: redis://host:6379/0 (default: in memory)")
	f.net.register(fs)
	f.admission.register(fs)
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format %q: want text or json", format)
}

// openGate opens the key store in the data dir. Without any usable key,
// serve refuses to start unless --no-auth says so.
func openGate(ctx context.Context, f serveFlags, getenv env, logger *slog.Logger) (*auth.Gate, func(), error) {
	if f.defaultRPM < 0 || f.defaultIPM < 0 {
		return nil, nil, fmt.Errorf("--requests-per-minute %d / --images-per-minute %d: must not be negative (--no-limits turns them off)",
			f.defaultRPM, f.defaultIPM)
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
	gate, err := auth.New(store, auth.Options{RateLimiter: limiter, RateLimitFailClosed: f.rateClosed, Logger: logger,
		DefaultLimits: defaultLimits(f)})
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	if err := gate.AddStaticKeys(f.apiKeys); err != nil {
		closeStore()
		return nil, nil, fmt.Errorf("--api-keys / SDGATE_API_KEYS: %w", err)
	}
	n, err := gate.CountKeys(ctx)
	if err != nil {
		closeStore()
		return nil, nil, err
	}
	if n == 0 && !f.noAuth {
		closeStore()
		where := "--data " + f.dataDir
		if f.postgres != "" {
			where = "--postgres DSN"
		}
		return nil, nil, fmt.Errorf("no API key is configured: create one with `sdgate keys create --name NAME %s` "+
			"(it prints the key), set SDGATE_API_KEYS, or serve without keys with --no-auth", where)
	}
	return gate, closeStore, nil
}

// defaultLimits are the per-minute limits of keys without their own: the
// flags' values, none with --no-limits.
func defaultLimits(f serveFlags) auth.Limits {
	if f.noLimits {
		return auth.Limits{}
	}
	return auth.Limits{RequestsPerMinute: f.defaultRPM, ImagesPerMinute: f.defaultIPM}
}

// logLimits says at start which rate limits keys without their own get.
func logLimits(logger *slog.Logger, f serveFlags) {
	if f.noLimits {
		logger.Info("rate limits off (--no-limits): keys without their own limits are unlimited and their answers carry no x-ratelimit-* headers")
		return
	}
	logger.Info("default rate limits for keys without their own", "requests_per_minute", f.defaultRPM,
		"images_per_minute", f.defaultIPM, "off", "--no-limits")
}

// openCache builds the result cache: in memory by default, in Redis when
// --cache-redis names one; nil with --cache-bytes -1.
func openCache(f serveFlags, logger *slog.Logger) (*cache.Cache, func(), error) {
	var store cache.Store
	closeStore := func() {}
	switch {
	case f.cacheRedis != "":
		r, err := cache.NewRedis(cache.RedisOptions{URL: f.cacheRedis, TTL: f.cacheTTL})
		if err != nil {
			return nil, nil, fmt.Errorf("--cache-redis: %w", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.Ping(ctx); err != nil {
			r.Close()
			return nil, nil, fmt.Errorf("--cache-redis %s: %w", f.cacheRedis, err)
		}
		store, closeStore = r, func() { r.Close() }
	case f.cacheBytes < 0:
		return nil, closeStore, nil
	default:
		size := f.cacheBytes
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

func parseAliases(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	for _, kv := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(kv), "=")
		if !ok || k == "" || v == "" {
			return nil, fmt.Errorf("--aliases: %q is not alias=model", kv)
		}
		out[k] = v
	}
	return out, nil
}

func parseKeepAlive(s string) (time.Duration, error) {
	if s == "never" {
		return -1, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--keep-alive %q: want a duration such as 5m, or never", s)
	}
	return d, nil
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
	if err := f.admission.validate(); err != nil {
		return err
	}

	rt, err := f.rt.start(logger)
	if err != nil {
		return err
	}
	defer rt.Close()
	reg, err := models.NewRegistry(models.RegistryOptions{
		Open: models.OpenWith(rt.OpenPipeline), Dir: f.modelsDir, DefaultModel: f.defaultModel,
		Aliases: aliases, DefaultAliases: server.AliasNames(),
		QueueSize: f.queueSize, QueueMaxWait: f.queueTimeout,
		KeepAlive: keepAlive, MaxResident: f.maxResident, Logger: logger,
		OpenVariant: loraVariantOpener(rt, f.loraStrict, logger),
		Batch:       models.BatchOptions{MaxBatch: f.maxBatch, Window: f.batchWindow},
	})
	if err != nil {
		return err
	}
	defer reg.Close(context.Background())
	gate, closeGate, err := openGate(ctx, f, getenv, logger)
	if err != nil {
		return err
	}
	defer closeGate()
	if !f.noAuth {
		logLimits(logger, f)
	}
	resultCache, closeCache, err := openCache(f, logger)
	if err != nil {
		return err
	}
	defer closeCache()
	imageStore, closeImages, err := openURLStore(ctx, "--url-store", f.urlStore, f.imageTTL)
	if err != nil {
		return err
	}
	defer closeImages()
	dev, _ := rt.Device()
	srvOpts := server.Options{
		PublicURL: f.publicURL, ImageTTL: f.imageTTL, BodyLimit: f.bodyLimit, Logger: logger,
		Gate: gate, NoAuth: f.noAuth, Cache: resultCache, Admin: reg, ImageStore: imageStore,
		TrustedProxies: f.net.proxies(), BodyTimeout: f.net.bodyTimeout, MetricsSeparate: f.net.metricsAddr != "",
		Engine: "sdgate-" + buildVersion() + "/ort-" + rt.Version() + "/" + dev.String(),
	}
	f.admission.apply(&srvOpts)
	srv, err := server.New(reg, srvOpts)
	if err != nil {
		return err
	}
	defer srv.Close()

	rawLn, err := net.Listen("tcp", f.addr)
	if err != nil {
		return err
	}
	ln, err := f.net.listen(rawLn)
	if err != nil {
		rawLn.Close()
		return err
	}
	if f.net.metricsAddr != "" {
		mln, err := net.Listen("tcp", f.net.metricsAddr)
		if err != nil {
			ln.Close()
			return fmt.Errorf("--metrics-addr: %w", err)
		}
		metricsSrv := f.net.httpServer(srv.MetricsHandler(), logger)
		go func() {
			if err := metricsSrv.Serve(mln); !errors.Is(err, http.ErrServerClosed) {
				logger.Error("metrics listener", "err", err)
			}
		}()
		defer metricsSrv.Close()
	}
	// inflight lets shutdown wait for every handler before the key store
	// (deferred above) closes: a handler still metering must finish.
	var inflight sync.WaitGroup
	handler := srv.Handler()
	httpSrv := f.net.httpServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		handler.ServeHTTP(w, r)
	}), logger)
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "models", len(reg.Models()), "default", reg.DefaultModel())
	if err := sdNotify(getenv("NOTIFY_SOCKET"), "READY=1"); err != nil {
		logger.Warn("sd_notify", "err", err)
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	for {
		select {
		case <-hup:
			if err := reg.Rescan(); err != nil {
				logger.Error("rescan", "err", err)
			} else {
				logger.Info("rescanned models", "models", len(reg.Models()), "broken", len(reg.Broken()))
			}
			continue
		case err := <-serveErr:
			return err
		case <-ctx.Done():
		}
		break
	}

	// Drain: stop accepting, let in-flight requests finish within the drain
	// timeout, then cancel what is left on the GPU.
	logger.Info("shutting down", "drain", f.drain)
	if err := sdNotify(getenv("NOTIFY_SOCKET"), "STOPPING=1"); err != nil {
		logger.Warn("sd_notify", "err", err)
	}
	drainCtx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	shutErr := httpSrv.Shutdown(drainCtx)
	// Past the drain timeout this cancels what still runs on the GPU: those
	// requests answer 503 and are metered.
	closeErr := reg.Close(drainCtx)
	if errors.Is(shutErr, context.DeadlineExceeded) {
		logger.Warn("drain timeout passed; cancelling in-flight requests")
		shutErr = httpSrv.Close()
	}
	inflight.Wait()
	return errors.Join(shutErr, closeErr)
}
