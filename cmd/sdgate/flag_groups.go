package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd"
	"github.com/sdgate/sdgate/server"
)

// The flag groups that serve, gateway and worker share: each command
// registers the groups it needs, so a flag means the same everywhere.

// logFlags: --log-format and --log-level.
type logFlags struct{ format, level string }

func (f *logFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.format, "log-format", "text", "text or json")
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
}

func (f *logFlags) logger(w io.Writer) (*slog.Logger, error) { return newLogger(w, f.format, f.level) }

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

// keyFlags: who may call and what keys without their own limits get.
type keyFlags struct {
	noAuth, noLimits, rateClosed bool
	defaultRPM, defaultIPM       int
	apiKeys                      string
}

func (f *keyFlags) register(fs *flag.FlagSet) {
	fs.BoolVar(&f.noAuth, "no-auth", false, "serve without API keys (requests are still metered)")
	fs.IntVar(&f.defaultRPM, "requests-per-minute", auth.DefaultRequestsPerMinute, "rate limit of keys created without their own (x-ratelimit-*-requests headers)")
	fs.IntVar(&f.defaultIPM, "images-per-minute", auth.DefaultImagesPerMinute, "image rate limit of keys created without their own (x-ratelimit-*-images headers)")
	fs.BoolVar(&f.noLimits, "no-limits", false, "no default rate limits (a private box): keys without their own are unlimited and get no x-ratelimit-* headers")
	fs.StringVar(&f.apiKeys, "api-keys", "", "extra keys, [NAME:]sk-...[:admin] separated by commas (SDGATE_API_KEYS)")
	fs.BoolVar(&f.rateClosed, "rate-limit-fail-closed", false, "answer 503 while the rate-limit Redis is down (default: limit per process meanwhile)")
}

// check refuses negative default limits, before anything is opened.
func (f *keyFlags) check() error {
	if f.defaultRPM < 0 || f.defaultIPM < 0 {
		return fmt.Errorf("--requests-per-minute %d / --images-per-minute %d: must not be negative (--no-limits turns them off)",
			f.defaultRPM, f.defaultIPM)
	}
	return nil
}

// limits are the per-minute limits of keys without their own: the flags'
// values, none with --no-limits.
func (f *keyFlags) limits() auth.Limits {
	if f.noLimits {
		return auth.Limits{}
	}
	return auth.Limits{RequestsPerMinute: f.defaultRPM, ImagesPerMinute: f.defaultIPM}
}

// logLimits says at start which rate limits keys without their own get.
func (f *keyFlags) logLimits(logger *slog.Logger) {
	if f.noAuth {
		return
	}
	if f.noLimits {
		logger.Info("rate limits off (--no-limits): keys without their own limits are unlimited and their answers carry no x-ratelimit-* headers")
		return
	}
	logger.Info("default rate limits for keys without their own", "requests_per_minute", f.defaultRPM,
		"images_per_minute", f.defaultIPM, "off", "--no-limits")
}

// newGate puts the key store behind the gate with the static keys added.
// Without any usable key it refuses to start unless --no-auth says so;
// where names the store in the hint that says how to create one.
func (f *keyFlags) newGate(ctx context.Context, store auth.Store, limiter auth.RateLimiter, logger *slog.Logger, where string) (*auth.Gate, error) {
	if err := f.check(); err != nil {
		return nil, err
	}
	gate, err := auth.New(store, auth.Options{RateLimiter: limiter, RateLimitFailClosed: f.rateClosed, Logger: logger,
		DefaultLimits: f.limits()})
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
		return nil, fmt.Errorf("no API key is configured: create one with `sdgate keys create --name NAME %s` "+
			"(it prints the key), set SDGATE_API_KEYS, or serve without keys with --no-auth", where)
	}
	f.logLimits(logger)
	return gate, nil
}

// modelFlags: the model folders a process loads and how long it keeps them.
type modelFlags struct {
	dir, defaultModel, aliases, keepAlive string
	maxResident                           int
}

func (f *modelFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.dir, "models", "./models", "models directory: one optimum/diffusers ONNX folder per model")
	fs.StringVar(&f.defaultModel, "default-model", "", "model id behind unmapped aliases (default: first by id)")
	fs.StringVar(&f.aliases, "aliases", "", "alias=model pairs, e.g. dall-e-3=sd15,gpt-image-1=sd15")
	fs.StringVar(&f.keepAlive, "keep-alive", "5m", "unload a model idle this long; never keeps it")
	fs.IntVar(&f.maxResident, "max-resident", 1, "models loaded at once; the least recently used idle one makes room")
}

// registry is the parsed flags as registry options, and the check of
// --aliases and --keep-alive, which must fail before ONNX Runtime loads:
// rt is then started by the caller and set into Open / OpenVariant.
func (f *modelFlags) registry(logger *slog.Logger) (models.RegistryOptions, error) {
	aliases, err := parseAliases(f.aliases)
	if err != nil {
		return models.RegistryOptions{}, err
	}
	keepAlive, err := parseKeepAlive(f.keepAlive)
	if err != nil {
		return models.RegistryOptions{}, err
	}
	return models.RegistryOptions{Dir: f.dir, DefaultModel: f.defaultModel, Aliases: aliases,
		DefaultAliases: server.AliasNames(), KeepAlive: keepAlive, MaxResident: f.maxResident, Logger: logger}, nil
}

// openRegistry binds opts to the runtime (LoRA variants included) and
// opens the registry.
func openRegistry(opts models.RegistryOptions, rt *sd.Runtime, loraStrict bool) (*models.Registry, error) {
	opts.Open = models.OpenWith(rt.OpenPipeline)
	opts.OpenVariant = loraVariantOpener(rt, loraStrict, opts.Logger)
	return models.NewRegistry(opts)
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
