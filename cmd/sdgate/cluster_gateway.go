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
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/dispatch"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/server"
)

// The scale-out gateway is one more server.Backend.
var _ server.Backend = (*dispatch.Gateway)(nil)

type gatewayFlags struct {
	addr, nats, postgres, redis string
	defaultModel, aliases       string
	publicURL                   string
	imageTTL, drain, maxWait    time.Duration
	bodyLimit, cacheBytes       int64
	cacheTTL                    time.Duration
	logFormat, logLevel         string
	noAuth, noLimits            bool
	defaultRPM, defaultIPM      int
	apiKeys                     string
	admission                   admissionFlags
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.addr, "addr", "127.0.0.1:8080", "listen address")
	fs.StringVar(&f.nats, "nats", "", "NATS server(s) with JetStream, e.g. nats://127.0.0.1:4222 (required)")
	fs.StringVar(&f.postgres, "postgres", "", "PostgreSQL DSN of the shared key store, e.g. postgres://sdgate@db/sdgate (required)")
	fs.StringVar(&f.redis, "redis", "", "share the result cache, the response_format=url images and the per-minute rate limits in Redis: redis://host:6379/0 (default: per gateway)")
	fs.StringVar(&f.defaultModel, "default-model", "", "model id behind unmapped aliases (default: first advertised by id)")
	fs.StringVar(&f.aliases, "aliases", "", "alias=model pairs, e.g. dall-e-3=sd15")
	fs.StringVar(&f.publicURL, "public-url", "", "scheme://host[:port] clients reach us at, for image URLs")
	fs.DurationVar(&f.imageTTL, "image-ttl", time.Hour, "how long response_format=url images stay")
	fs.DurationVar(&f.maxWait, "max-wait", 10*time.Minute, "longest a job may wait for a worker's result")
	fs.Int64Var(&f.bodyLimit, "body-limit", 1<<20, "largest JSON request body in bytes (413 above)")
	fs.Int64Var(&f.cacheBytes, "cache-bytes", 0, "in-memory result cache size (0: 1/8 of RAM, at most 8 GiB; -1: no cache)")
	fs.DurationVar(&f.cacheTTL, "cache-ttl", 24*time.Hour, "how long Redis keeps a cached result")
	fs.DurationVar(&f.drain, "drain-timeout", 30*time.Second, "on SIGTERM, time to finish in-flight requests")
	fs.StringVar(&f.logFormat, "log-format", "text", "text or json")
	fs.StringVar(&f.logLevel, "log-level", "info", "debug, info, warn or error")
	fs.BoolVar(&f.noAuth, "no-auth", false, "serve without API keys (requests are still metered)")
	fs.IntVar(&f.defaultRPM, "requests-per-minute", auth.DefaultRequestsPerMinute, "rate limit of keys created without their own")
	fs.IntVar(&f.defaultIPM, "images-per-minute", auth.DefaultImagesPerMinute, "image rate limit of keys created without their own")
	fs.BoolVar(&f.noLimits, "no-limits", false, "no default rate limits: keys without their own are unlimited")
	fs.StringVar(&f.apiKeys, "api-keys", "", "extra keys, [NAME:]sk-...[:admin] separated by commas")
	f.admission.register(fs)
}

// runGateway serves the HTTP API with no model loaded: jobs go to the
// workers over NATS, keys and usage live in PostgreSQL.
func runGateway(ctx context.Context, args []string, getenv env, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gateway", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f gatewayFlags
	f.register(fs)
	if err := parseFlags(fs, args, getenv); err != nil {
		return err
	}
	if f.nats == "" || f.postgres == "" {
		return errors.New("gateway: --nats and --postgres are required")
	}
	if err := f.admission.validate(); err != nil {
		return err
	}
	logger, err := newLogger(stderr, f.logFormat, f.logLevel)
	if err != nil {
		return err
	}
	aliases, err := parseAliases(f.aliases)
	if err != nil {
		return err
	}
	nc, err := connectNATS(f.nats, "sdgate-gateway", logger)
	if err != nil {
		return err
	}
	defer nc.Close()
	gw, err := dispatch.NewGateway(ctx, nc, dispatch.GatewayOptions{Logger: logger, MaxWait: f.maxWait,
		Names: models.IdentityConfig{Aliases: aliases, DefaultAliases: server.AliasNames(), Default: f.defaultModel}})
	if err != nil {
		return err
	}
	defer gw.Close()

	store, err := auth.OpenPostgres(ctx, f.postgres)
	if err != nil {
		return fmt.Errorf("--postgres: %w", err)
	}
	defer store.Close()
	// One Redis shares what gateways must agree on: rate limits, the URL
	// store and (below) the result cache with its cross-gateway flights.
	limiter, closeLimiter, err := openRateLimiter(ctx, "--redis", f.redis)
	if err != nil {
		return err
	}
	defer closeLimiter()
	imageStore, closeImages, err := openURLStore(ctx, "--redis", f.redis, f.imageTTL)
	if err != nil {
		return err
	}
	defer closeImages()
	gate, err := gatewayGate(ctx, store, limiter, logger, f)
	if err != nil {
		return err
	}
	resultCache, closeCache, err := openCache(serveFlags{cacheBytes: f.cacheBytes, cacheRedis: f.redis, cacheTTL: f.cacheTTL}, logger)
	if err != nil {
		return err
	}
	defer closeCache()
	srvOpts := server.Options{PublicURL: f.publicURL, ImageTTL: f.imageTTL, BodyLimit: f.bodyLimit,
		Logger: logger, Gate: gate, NoAuth: f.noAuth, Cache: resultCache, ImageStore: imageStore,
		// Workers of one engine build share cache keys; the advertised
		// folder digests tell model versions apart.
		Engine: "sdgate-" + buildVersion() + "/cluster"}
	f.admission.apply(&srvOpts)
	srv, err := server.New(gw, srvOpts)
	if err != nil {
		return err
	}
	defer srv.Close()
	return serveUntilDone(ctx, srv.Handler(), f.addr, f.drain, logger, getenv)
}

func gatewayGate(ctx context.Context, store auth.Store, limiter auth.RateLimiter, logger *slog.Logger, f gatewayFlags) (*auth.Gate, error) {
	if f.defaultRPM < 0 || f.defaultIPM < 0 {
		return nil, fmt.Errorf("--requests-per-minute %d / --images-per-minute %d: must not be negative (--no-limits turns them off)",
			f.defaultRPM, f.defaultIPM)
	}
	gate, err := auth.New(store, auth.Options{RateLimiter: limiter, Logger: logger,
		DefaultLimits: defaultLimits(serveFlags{noLimits: f.noLimits, defaultRPM: f.defaultRPM, defaultIPM: f.defaultIPM})})
	if err != nil {
		return nil, err
	}
	if err := gate.AddStaticKeys(f.apiKeys); err != nil {
		return nil, fmt.Errorf("--api-keys / SDGATE_API_KEYS: %w", err)
	}
	n, err := gate.CountKeys(ctx)
	if err != nil {
		return nil, err
	}
	if n == 0 && !f.noAuth {
		return nil, errors.New("no API key is configured: create one with `sdgate keys create` against the same store, " +
			"set SDGATE_API_KEYS, or serve without keys with --no-auth")
	}
	return gate, nil
}

// connectNATS connects for the life of the process: it reconnects for
// ever, because a gateway or worker without NATS can do nothing else.
func connectNATS(url, name string, logger *slog.Logger) (*nats.Conn, error) {
	nc, err := nats.Connect(url, nats.Name(name), nats.MaxReconnects(-1), nats.ReconnectWait(250*time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) { logger.Warn("nats disconnected", "err", err) }),
		nats.ReconnectHandler(func(c *nats.Conn) { logger.Info("nats reconnected", "url", c.ConnectedUrlRedacted()) }))
	if err != nil {
		return nil, fmt.Errorf("--nats %s: %w", url, err)
	}
	return nc, nil
}

// serveUntilDone serves h on addr until ctx ends, then drains in-flight
// requests for up to drain before closing them.
func serveUntilDone(ctx context.Context, h http.Handler, addr string, drain time.Duration, logger *slog.Logger, getenv env) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	var inflight sync.WaitGroup
	httpSrv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		inflight.Add(1)
		defer inflight.Done()
		h.ServeHTTP(w, r)
	})}
	serveErr := make(chan error, 1)
	go func() { serveErr <- httpSrv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String())
	if err := sdNotify(getenv("NOTIFY_SOCKET"), "READY=1"); err != nil {
		logger.Warn("sd_notify", "err", err)
	}
	select {
	case err := <-serveErr:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down", "drain", drain)
	drainCtx, cancel := context.WithTimeout(context.Background(), drain)
	defer cancel()
	err = httpSrv.Shutdown(drainCtx)
	if errors.Is(err, context.DeadlineExceeded) {
		logger.Warn("drain timeout passed; closing in-flight requests")
		err = httpSrv.Close()
	}
	inflight.Wait()
	return err
}
