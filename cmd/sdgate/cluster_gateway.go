package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/sdgate/sdgate/dispatch"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/server"
)

// The scale-out gateway is one more server.Backend.
var _ server.Backend = (*dispatch.Gateway)(nil)

type gatewayFlags struct {
	api                   apiFlags
	keys                  keyFlags
	log                   logFlags
	cache                 cacheFlags
	nats, postgres, redis string
	defaultModel, aliases string
	maxWait               time.Duration
}

func (f *gatewayFlags) register(fs *flag.FlagSet) {
	f.api.register(fs)
	fs.StringVar(&f.nats, "nats", "", "NATS server(s) with JetStream, e.g. nats://127.0.0.1:4222 (required)")
	fs.StringVar(&f.postgres, "postgres", "", "PostgreSQL DSN of the shared key store, e.g. postgres://sdgate@db/sdgate (required)")
	fs.StringVar(&f.redis, "redis", "", "share the result cache, the response_format=url images and the per-minute rate limits in Redis: redis://host:6379/0 (default: per gateway)")
	fs.StringVar(&f.defaultModel, "default-model", "", "model id behind unmapped aliases (default: first advertised by id)")
	fs.StringVar(&f.aliases, "aliases", "", "alias=model pairs, e.g. dall-e-3=sd15")
	fs.DurationVar(&f.maxWait, "max-wait", 10*time.Minute, "longest a job may wait for a worker's result")
	f.cache.register(fs)
	f.log.register(fs)
	f.keys.register(fs)
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
	logger, err := f.log.logger(stderr)
	if err != nil {
		return err
	}
	aliases, err := parseAliases(f.aliases)
	if err != nil {
		return err
	}
	if err := f.api.check(); err != nil {
		return err
	}
	if err := f.keys.check(); err != nil {
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

	store, err := openKeyStore(ctx, "", f.postgres)
	if err != nil {
		return err
	}
	defer store.Close()
	// One Redis shares what gateways must agree on: rate limits, the URL
	// store and (below) the result cache with its cross-gateway flights.
	limiter, closeLimiter, err := openRateLimiter(ctx, "--redis", f.redis)
	if err != nil {
		return err
	}
	defer closeLimiter()
	imageStore, closeImages, err := openURLStore(ctx, "--redis", f.redis, f.api.imageTTL)
	if err != nil {
		return err
	}
	defer closeImages()
	gate, err := f.keys.newGate(ctx, store, limiter, logger, "--postgres DSN")
	if err != nil {
		return err
	}
	f.cache.redis, f.cache.redisFlag = f.redis, "--redis"
	resultCache, closeCache, err := openCache(f.cache, logger)
	if err != nil {
		return err
	}
	defer closeCache()
	srv, err := server.New(gw, f.api.options(server.Options{Logger: logger, Gate: gate, NoAuth: f.keys.noAuth,
		Cache: resultCache, ImageStore: imageStore,
		// Workers of one engine build share cache keys; the advertised
		// folder digests tell model versions apart.
		Engine: "sdgate-" + buildVersion() + "/cluster"}))
	if err != nil {
		return err
	}
	defer srv.Close()
	return f.api.serve(ctx, srv, logger, getenv, serveHooks{})
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
