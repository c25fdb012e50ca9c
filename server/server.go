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
	"net/netip"
	"net/url"
	"slices"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/sdgate/sdgate/auth"
	"github.com/sdgate/sdgate/cache"
	"github.com/sdgate/sdgate/compat"
	"github.com/sdgate/sdgate/models"
	"github.com/sdgate/sdgate/sd/spec"
	"github.com/sdgate/sdgate/urlstore"
)

// Backend is everything the server needs of the model layer; the
// models.Registry is the one sdgate serve passes. Administration (rescan,
// broken folders) is a separate seam: Options.Admin.
type Backend interface {
	// Models lists the servable local models.
	Models() []models.Info
	// Resolve maps a name (alias, local id, OpenAI name, "" for the
	// default) to a servable model, as of the last rescan.
	Resolve(name string) (models.Info, bool)
	// Aliases are the configured names (flags, folders' sdgate.json) and
	// the model id each resolves to now.
	Aliases() map[string]string
	// Generate runs req on the model (a local id, after resolution)
	// through the GPU queue.
	Generate(ctx context.Context, modelID string, req spec.Request) (spec.Result, error)
	// Ready reports whether the default model can be loaded and run.
	Ready(ctx context.Context) error
	// Default says which model serves unnamed requests and whether the
	// configured default is missing (readyz, admin listing).
	Default() models.DefaultState
	// CountTokens counts the CLIP tokens of text (usage blocks).
	CountTokens(text string) int
	// Stats and QueueDepth feed /metrics.
	Stats() models.Stats
	QueueDepth() int
}

var _ Backend = (*models.Registry)(nil)

// AliasNames are the OpenAI model names the server answers to; the model
// layer maps each to the default model unless it is configured.
func AliasNames() []string {
	names := make([]string, 0, len(aliasFamilies))
	for name := range aliasFamilies {
		names = append(names, name)
	}
	slices.Sort(names)
	return names
}

// aliasFamilies are the OpenAI model names and the rules each follows.
var aliasFamilies = map[string]compat.Family{
	"dall-e-2":             compat.FamilyDallE2,
	"dall-e-3":             compat.FamilyDallE3,
	"gpt-image-1":          compat.FamilyGPTImage,
	"gpt-image-1-mini":     compat.FamilyGPTImageMini,
	"gpt-image-1.5":        compat.FamilyGPTImage15,
	"chatgpt-image-latest": compat.FamilyChatGPTImage,
	"gpt-image-2":          compat.FamilyGPTImage2,
	// The dated snapshot of gpt-image-2 follows its rules.
	"gpt-image-2-2026-04-21": compat.FamilyGPTImage2,
}

// Options configure a Server; the zero value of each field means its
// documented default.
type Options struct {
	// PublicURL is the scheme://host[:port][/prefix] clients reach us at, for
	// image URLs. "" derives it per request from Host, or from
	// X-Forwarded-Proto and X-Forwarded-Host sent by a trusted proxy.
	PublicURL string
	// ImageTTL is how long response_format=url images stay (default 60m).
	ImageTTL time.Duration
	// ImageStoreBytes caps the memory of stored URL images; the oldest go
	// first (default 1 GiB).
	ImageStoreBytes int64
	// ImageStore holds response_format=url images; nil keeps them in this
	// process (urlstore.Memory with ImageTTL and ImageStoreBytes). A shared
	// one (urlstore.Redis) lets any gateway serve a URL another minted; its
	// TTL should be ImageTTL. The caller closes it.
	ImageStore ImageStore
	// BodyLimit caps request bodies; larger ones get 413 (default 1 MiB).
	BodyLimit int64
	// RetryAfter is the Retry-After hint for a full or overloaded queue when
	// the queue gives no estimate of its own (default 1s).
	RetryAfter time.Duration
	// Logger receives the access log and errors (default: discard).
	Logger *slog.Logger
	// TrustedProxies (IPs or CIDR prefixes) are the proxies whose
	// X-Forwarded-For names the client in logs and whose X-Forwarded-Proto
	// and X-Forwarded-Host build image URLs; nil trusts none.
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
	// NoAuth serves without API keys; with a Gate, requests are still
	// metered (without a key).
	NoAuth bool
	// Admin rescans the models and lists broken folders for the admin
	// endpoints; nil answers them 404.
	Admin ModelAdmin

	// MaxInputPixels bounds an uploaded image's W x H, read from its header
	// before decoding (default DefaultMaxInputPixels, 4096x4096).
	MaxInputPixels int64
	// MaxImagePixels bounds one delivered image (default
	// DefaultMaxImagePixels, 3840x2160); "auto" sizes shrink to fit it.
	MaxImagePixels int64
	// MaxRequestPixels bounds n x W x H of one request (default
	// DefaultMaxRequestPixels, 10 x 1536x1024).
	MaxRequestPixels int64
	// DecodeBudget bounds the bytes of decoded upload pixels held at once
	// across requests (default DefaultDecodeBudget, 512 MiB); DecodeWait is
	// how long a request waits for room before a 429 (default 2s).
	DecodeBudget int64
	DecodeWait   time.Duration
	// MetricsSeparate: /metrics is served by MetricsHandler on a listener
	// of its own, not on the API (which answers it 404). Otherwise, with
	// keys on, /metrics needs an admin key.
	MetricsSeparate bool
	// BodyTimeout is how long a client may take to send its request body
	// (default DefaultBodyTimeout, 2m); past it the answer is 408. The
	// deadline is lifted once the body is read: generations and streams
	// that follow are never cut by it.
	BodyTimeout time.Duration
}

// Defaults.
const (
	DefaultImageTTL        = 60 * time.Minute
	DefaultImageStoreBytes = 1 << 30
	DefaultBodyLimit       = 1 << 20
	DefaultRetryAfter      = time.Second
)

// ImageStore keeps the images of response_format=url responses by name
// until they expire.
type ImageStore interface {
	// PutAll stores one response's images and returns their names and
	// common expiry.
	PutAll(ctx context.Context, datas [][]byte, contentType, ext string) ([]string, time.Time, error)
	// Get returns a live image; ok is false when there is none by name.
	Get(ctx context.Context, name string) (img urlstore.Image, ok bool, err error)
	// Stats are the images and bytes held, for /metrics; must not block.
	Stats() (count int, bytes int64)
}

var (
	_ ImageStore = (*urlstore.Memory)(nil)
	_ ImageStore = (*urlstore.Redis)(nil)
)

// Server serves the API. Close it to stop the image store's sweeper.
type Server struct {
	gen      Backend
	opts     Options
	log      *slog.Logger
	engine   *gin.Engine
	store    ImageStore
	own      *urlstore.Memory // the store New made, closed by Close; nil when given one
	metrics  *metrics
	docs     *apiDocs
	decodes  *decodeGate
	prepared *preparedGenerations // what recent generations bodies mean (prepared.go)
	proxies  []netip.Prefix
}

// ErrBadOptions: New refused its options.
var ErrBadOptions = errors.New("bad server options")

// New builds a Server around gen.
func New(gen Backend, opts Options) (*Server, error) {
	if gen == nil {
		return nil, fmt.Errorf("%w: nil generator", ErrBadOptions)
	}
	if err := opts.fill(); err != nil {
		return nil, err
	}
	proxies, err := parseProxies(opts.TrustedProxies)
	if err != nil {
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
	s := &Server{gen: gen, opts: opts, log: opts.Logger, store: opts.ImageStore, docs: docs,
		decodes: newDecodeGate(opts.DecodeBudget, opts.DecodeWait), prepared: newPreparedGenerations(), proxies: proxies}
	if s.store == nil {
		s.own = urlstore.NewMemory(opts.ImageTTL, opts.ImageStoreBytes, opts.Now)
		s.store = s.own
	}
	s.metrics = newMetrics(gen.QueueDepth, s.store.Stats)
	s.metrics.registerSources(opts.Cache, gen.Stats)
	engine, err := s.routes()
	if err != nil {
		s.Close()
		return nil, err
	}
	s.engine = engine
	return s, nil
}

func (o *Options) fill() error {
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
	if o.Now == nil {
		o.Now = time.Now
	}
	o.fillPixels()
	return nil
}

// Handler is the http.Handler to serve.
func (s *Server) Handler() http.Handler { return s.engine }

// Close stops background work (the in-memory image store's sweeper).
func (s *Server) Close() {
	if s.own != nil {
		s.own.Close()
	}
}

// Target is a request's model after alias resolution.
type Target struct {
	Name    string // as the client named it (or the upstream default)
	ModelID string // local model id
	Rules   compat.Rules
	Info    models.Info
	Limits  PixelLimits // what one request may deliver (zero: unbounded)
}

// resolveModel maps a client's model name to a servable model: the model
// layer owns what names mean; the server only picks the rules (an OpenAI
// name's family, else the local rules).
func (s *Server) resolveModel(name string) (Target, error) {
	info, ok := s.gen.Resolve(name)
	if name == "" || !ok {
		return Target{}, &modelNotFoundError{name: name}
	}
	family, isOpenAI := aliasFamilies[name]
	if !isOpenAI {
		family = compat.FamilyLocal
	}
	rules, _ := compat.RulesFor(family)
	return Target{Name: name, ModelID: info.ID, Rules: rules, Info: info, Limits: s.pixelLimits(info)}, nil
}

// modelNotFoundError names the model the client asked for.
type modelNotFoundError struct{ name string }

func (e *modelNotFoundError) Error() string { return fmt.Sprintf("model %q not found", e.name) }
func (e *modelNotFoundError) Unwrap() error { return models.ErrModelNotFound }
