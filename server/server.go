// Package server is sdgate's HTTP face: a gin engine that speaks the OpenAI
// Images API (see routes.go for the whole surface), translates requests to
// the sd pipeline, and turns every error into OpenAI's envelope in one place.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd"
)

// Generator is what the server needs of the model layer.
type Generator interface {
	// Models lists the servable local models.
	Models() []models.Info
	// Generate runs req on the model (a local id, after alias resolution)
	// through the GPU queue.
	Generate(ctx context.Context, modelID string, req sd.Request) (sd.Result, error)
	// Ready reports whether the default model can be loaded and run.
	Ready(ctx context.Context) error
}

// Aliases are the OpenAI model names the server answers to.
var aliasFamilies = map[string]compat.Family{
	"dall-e-2":    compat.FamilyDallE2,
	"dall-e-3":    compat.FamilyDallE3,
	"gpt-image-1": compat.FamilyGPTImage,
}

// Options configure a Server; the zero value of each field means its
// documented default.
type Options struct {
	// Aliases maps dall-e-2, dall-e-3 and gpt-image-1 to local model ids.
	// An alias left out maps to DefaultModel.
	Aliases map[string]string
	// DefaultModel is the local model behind unmapped aliases; "" means the
	// first local model by id.
	DefaultModel string
	// PublicURL is the scheme://host[:port][/prefix] clients reach us at, for
	// image URLs. "" derives it per request from X-Forwarded-Proto,
	// X-Forwarded-Host and Host.
	PublicURL string
	// ImageTTL is how long response_format=url images stay (default 60m).
	ImageTTL time.Duration
	// ImageStoreBytes caps the memory of stored URL images; the oldest go
	// first (default 1 GiB).
	ImageStoreBytes int64
	// BodyLimit caps request bodies; larger ones get 413 (default 1 MiB).
	BodyLimit int64
	// RetryAfter is the Retry-After hint for a full or overloaded queue when
	// the queue gives no estimate of its own (default 1s).
	RetryAfter time.Duration
	// Logger receives the access log and errors (default: discard).
	Logger *slog.Logger
	// Middleware runs after the request id and before every handler: the
	// seam for authentication.
	Middleware []gin.HandlerFunc
	// QueueDepth reports waiting jobs for /metrics; nil exports 0.
	QueueDepth func() int
	// CountTokens counts the CLIP tokens of a prompt for usage blocks; nil
	// uses an estimate (see docs/openai-compat.md).
	CountTokens func(text string) int
	// TrustedProxies are the proxies whose X-Forwarded-For names the client
	// in logs; nil trusts none.
	TrustedProxies []string
	// Now is the clock (default time.Now).
	Now func() time.Time

	// Gate authenticates API keys, applies their rate limits and quotas and
	// meters every image request; nil serves everyone and meters nothing.
	Gate *auth.Gate
	// Cache is the result cache in front of the GPU; nil caches nothing.
	Cache *cache.Cache
	// Engine names what computes the pixels (build, device, precision) for
	// cache keys shared between instances, e.g. "ort-1.30/cuda/fp16".
	Engine string
	// ModelDigest fingerprints a model's files for cache keys; nil: the id only.
	ModelDigest func(id string) string
	// NoAuth serves without API keys; with a Gate, requests are still
	// metered (without a key).
	NoAuth bool
	// ModelStats reports model loads and unloads for /metrics; nil: none.
	ModelStats func() models.Stats
}

// Defaults.
const (
	DefaultImageTTL        = 60 * time.Minute
	DefaultImageStoreBytes = 1 << 30
	DefaultBodyLimit       = 1 << 20
	DefaultRetryAfter      = time.Second
)

// Server serves the API. Close it to stop the image store's sweeper.
type Server struct {
	gen     Generator
	opts    Options
	log     *slog.Logger
	engine  *gin.Engine
	store   *imageStore
	metrics *metrics
	docs    *apiDocs
}

// ErrBadOptions: New refused its options.
var ErrBadOptions = errors.New("bad server options")

// New builds a Server around gen.
func New(gen Generator, opts Options) (*Server, error) {
	if gen == nil {
		return nil, fmt.Errorf("%w: nil generator", ErrBadOptions)
	}
	if err := opts.fill(); err != nil {
		return nil, err
	}
	docs, err := loadAPIDocs()
	if err != nil {
		return nil, err
	}
	// gin's debug mode prints to stdout; tests choose TestMode themselves.
	if gin.Mode() == gin.DebugMode {
		gin.SetMode(gin.ReleaseMode)
	}
	store := newImageStore(opts.ImageTTL, opts.ImageStoreBytes, opts.Now)
	s := &Server{
		gen:     gen,
		opts:    opts,
		log:     opts.Logger,
		store:   store,
		metrics: newMetrics(opts.QueueDepth, store.stats),
		docs:    docs,
	}
	s.metrics.registerSources(opts.Cache, opts.ModelStats)
	engine, err := s.routes()
	if err != nil {
		s.store.close()
		return nil, err
	}
	s.engine = engine
	return s, nil
}

func (o *Options) fill() error {
	for alias := range o.Aliases {
		if _, ok := aliasFamilies[alias]; !ok {
			return fmt.Errorf("%w: unknown alias %q (known: dall-e-2, dall-e-3, gpt-image-1)", ErrBadOptions, alias)
		}
	}
	if o.PublicURL != "" {
		u, err := url.Parse(o.PublicURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("%w: public URL %q is not an http(s) URL", ErrBadOptions, o.PublicURL)
		}
	}
	if o.ImageTTL <= 0 {
		o.ImageTTL = DefaultImageTTL
	}
	if o.ImageStoreBytes <= 0 {
		o.ImageStoreBytes = DefaultImageStoreBytes
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = DefaultBodyLimit
	}
	if o.RetryAfter <= 0 {
		o.RetryAfter = DefaultRetryAfter
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.CountTokens == nil {
		o.CountTokens = estimateCLIPTokens
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return nil
}

// Handler is the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

// Close stops background work (the image store's sweeper).
func (s *Server) Close() { s.store.close() }

// Target is a request's model after alias resolution.
type Target struct {
	Name    string // as the client named it (or the upstream default)
	ModelID string // local model id
	Rules   compat.Rules
	Info    models.Info
}

// resolveModel maps an alias or a local id to a servable model.
func (s *Server) resolveModel(name string) (Target, error) {
	infos := s.gen.Models()
	if family, ok := aliasFamilies[name]; ok {
		id := s.aliasTarget(name, infos)
		i := slices.IndexFunc(infos, func(m models.Info) bool { return m.ID == id })
		if i < 0 {
			return Target{}, &modelNotFoundError{name: name}
		}
		rules, _ := compat.RulesFor(family)
		return Target{Name: name, ModelID: id, Rules: rules, Info: infos[i]}, nil
	}
	i := slices.IndexFunc(infos, func(m models.Info) bool { return m.ID == name })
	if i < 0 {
		return Target{}, &modelNotFoundError{name: name}
	}
	rules, _ := compat.RulesFor(compat.FamilyLocal)
	return Target{Name: name, ModelID: name, Rules: rules, Info: infos[i]}, nil
}

// aliasTarget is the local id behind an alias: configured, else the default
// model, else the first local model by id.
func (s *Server) aliasTarget(alias string, infos []models.Info) string {
	if id := s.opts.Aliases[alias]; id != "" {
		return id
	}
	if s.opts.DefaultModel != "" {
		return s.opts.DefaultModel
	}
	ids := make([]string, len(infos))
	for i, m := range infos {
		ids[i] = m.ID
	}
	slices.Sort(ids)
	if len(ids) == 0 {
		return ""
	}
	return ids[0]
}

// modelNotFoundError names the model the client asked for.
type modelNotFoundError struct{ name string }

func (e *modelNotFoundError) Error() string { return fmt.Sprintf("model %q not found", e.name) }
func (e *modelNotFoundError) Unwrap() error { return models.ErrModelNotFound }
