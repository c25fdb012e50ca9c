package models

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sdgate/sdgate/sd/spec"
)

// RegistryOptions configure a Registry. Open and Dir are required.
type RegistryOptions struct {
	Open         Opener
	Dir          string // one sub-folder per model; its name is the model id
	DefaultModel string // "" = the first model by id
	// Aliases map names (e.g. dall-e-3) to model ids; they win over the
	// aliases folders declare in their sdgate.json.
	Aliases map[string]string
	// DefaultAliases mean the default model unless an alias says otherwise.
	DefaultAliases []string
	QueueSize      int // jobs that may wait behind the running one
	QueueMaxWait   time.Duration
	// KeepAlive unloads a model idle this long (default 5m); negative keeps
	// models loaded forever. A folder's sdgate.json keep_alive overrides it.
	KeepAlive time.Duration
	// MaxResident bounds the models loaded at once (default 1: one GPU's
	// memory); loading another unloads the least recently used idle one.
	MaxResident int
	// OpenVariant opens a folder with LoRAs merged at load (LoRA aliases
	// and requests' loras); nil serves neither.
	OpenVariant VariantOpener
	// Batch configures dynamic batching (see BatchOptions).
	Batch  BatchOptions
	Logger *slog.Logger
	// BrokenBackoff is the first wait before a model that failed to load is
	// tried again (default DefaultBrokenBackoff; doubles per failure).
	BrokenBackoff time.Duration
}

// DefaultKeepAlive is how long an idle model stays loaded.
const DefaultKeepAlive = 5 * time.Minute

// Broken is a folder that looked like a model but failed validation, or
// (Load) validated and then failed to load: it stays listed among the
// models and is retried at RetryAt or when its files change.
type Broken struct {
	ID      string
	Err     error
	Load    bool
	RetryAt time.Time
}

// Stats are the registry's counters, for /metrics.
type Stats struct {
	Resident  int    // models loaded now
	Broken    int    // folders that failed validation or their last load
	Loads     uint64 // sessions created, all models
	Unloads   uint64 // unloads, idle and LRU
	LoadNanos uint64 // total time spent loading
	// Batches counts batched runs by their number of requests.
	Batches BatchSizes
}

// Registry is the set of servable models and the single GPU worker they
// share. Models are validated at start-up (and on Rescan), loaded on first
// use inside the worker so a load never overlaps a generation, and unloaded
// after their keep-alive or to make room.
type Registry struct {
	openFolder  Opener
	queue       *Queue
	log         *slog.Logger
	dir         string
	keepAlive   time.Duration
	maxResident int
	names       IdentityConfig
	batch       BatchOptions
	batches     batcher
	batchSizes  batchSizeCounter

	rescanMu sync.Mutex // one rescan at a time
	mu       sync.Mutex // guards entries, ident, broken and each entry's use state
	entries  map[string]*entry
	ident    Identity
	broken   []Broken
	// variants are LoRA variants requests asked for, by variantKey; the
	// worker alone adds and prunes them (variants.go).
	variants    map[string]*entry
	openVariant VariantOpener
	loraMemo    loraDigests             // rescan's
	failures    map[*entry]*loadFailure // models whose last load failed (health.go)

	brokenBackoff time.Duration

	loads, unloads, loadNanos atomic.Uint64
	closed                    atomic.Bool
	stop                      chan struct{}
	janitorDone               chan struct{}
}

type entry struct {
	info      Info
	model     Pipeline
	keepAlive time.Duration // < 0: never unload when idle
	inUse     int           // jobs between load and the end of generation
	lastUsed  time.Time
	dropped   bool // removed by Rescan: jobs still queued for it must not reload it

	// LoRA variants: the folder entry they merge into, what they merge and
	// its variantKey; transient ones were made for requests (not aliases).
	base      *entry
	applied   []AppliedLoRA
	key       string
	transient bool
	// loraAliases are the folder's sdgate.json aliases that name LoRAs.
	loraAliases map[string][]spec.LoRA
	// Dynamic batching: images per batch (<= 1: off) and window.
	maxBatch    int
	batchWindow time.Duration
}

// folderSettings is the registry's part of a folder's sdgate.json (the sd
// package reads the pipeline's part: native size, default steps, ...).
type folderSettings struct {
	DisplayName string `json:"display_name"`
	// KeepAlive: a Go duration ("90s", "10m"), or "never".
	KeepAlive     string             `json:"keep_alive"`
	Aliases       folderAliases      `json:"aliases"`
	QualitySteps  map[string]int     `json:"quality_steps"`
	StyleGuidance map[string]float64 `json:"style_guidance"`
	// MaxBatch and BatchWindow ("5ms", "0s") override BatchOptions.
	MaxBatch    *int   `json:"max_batch"`
	BatchWindow string `json:"batch_window"`
}

// NewRegistry scans opts.Dir and starts the worker and the keep-alive janitor.
func NewRegistry(opts RegistryOptions) (*Registry, error) {
	if opts.Open == nil {
		return nil, errors.New("models: an opener is required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if opts.KeepAlive == 0 {
		opts.KeepAlive = DefaultKeepAlive
	}
	if opts.MaxResident <= 0 {
		opts.MaxResident = 1
	}
	if opts.Batch.MaxBatch == 0 {
		opts.Batch.MaxBatch = DefaultMaxBatch
	}
	r := &Registry{
		openFolder: opts.Open, log: logger, dir: opts.Dir, keepAlive: opts.KeepAlive, maxResident: opts.MaxResident, batch: opts.Batch,
		brokenBackoff: cmpOr(opts.BrokenBackoff, DefaultBrokenBackoff),
		names:         IdentityConfig{Aliases: maps.Clone(opts.Aliases), DefaultAliases: slices.Clone(opts.DefaultAliases), Default: opts.DefaultModel},
		entries:       map[string]*entry{}, stop: make(chan struct{}), janitorDone: make(chan struct{}),
		variants: map[string]*entry{}, openVariant: opts.OpenVariant, loraMemo: loraDigests{},
	}
	if err := r.Rescan(); err != nil {
		return nil, err
	}
	// At start a wrong default is a configuration error; after a rescan
	// the first model by id stands in (see DefaultState).
	if def := r.Default(); def.Missing {
		return nil, fmt.Errorf("models: default model %q is not among %v", def.Configured, r.ident.ids)
	}
	r.queue = NewQueue(opts.QueueSize, QueueOptions{MaxWait: opts.QueueMaxWait})
	go r.janitor()
	return r, nil
}

// Rescan re-reads the models directory: new folders become servable,
// removed or now-broken ones are dropped (and unloaded once idle), and
// unchanged loaded models stay loaded. A broken folder is logged and listed
// by Broken; it never takes the others down.
func (r *Registry) Rescan() error {
	r.rescanMu.Lock()
	defer r.rescanMu.Unlock()
	list, err := os.ReadDir(r.dir)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	found := map[string]*entry{}
	var broken []Broken
	for _, d := range list {
		path := filepath.Join(r.dir, d.Name())
		if !d.IsDir() || !looksLikeModel(path) {
			continue
		}
		e, err := r.open(d.Name(), path)
		if err != nil {
			broken = append(broken, Broken{ID: d.Name(), Err: err})
			r.log.Error("model folder is not usable", "id", d.Name(), "err", err)
			continue
		}
		found[d.Name()] = e
	}
	if len(found) == 0 {
		return fmt.Errorf("models: no usable model in %s (%d broken)", r.dir, len(broken))
	}

	r.mu.Lock()
	old := r.entries
	r.mu.Unlock()
	for id, e := range found {
		if o, ok := old[id]; ok && o.info.Created.Equal(e.info.Created) {
			found[id] = o // unchanged folder: keep its loaded sessions and digest
			continue
		}
		e.info.Digest = r.digest(e.info)
	}
	loras := r.scanAllLoRAs(found)
	broken = append(broken, r.loraAliases(found, old, loras)...)
	infos := make([]Info, 0, len(found))
	for _, e := range found {
		info := e.info
		info.LoRAs = loras[info.ID]
		if e.base != nil {
			info.LoRAs = loras[e.base.info.ID]
		}
		infos = append(infos, info)
	}
	ident := NewIdentity(infos, r.names)
	if def := ident.Default(); def.Missing {
		r.log.Warn("default model is not servable; the first model by id stands in", "configured", def.Configured, "serving", def.ID)
	}
	for a, target := range ident.Dangling() {
		r.log.Warn("alias points at no servable model", "alias", a, "target", target)
	}

	r.mu.Lock()
	var drop []*entry
	for id, o := range r.entries {
		if found[id] != o {
			o.dropped = true
			drop = append(drop, o)
		}
	}
	for key, v := range r.variants {
		if found[v.base.info.ID] != v.base {
			v.dropped = true
			drop = append(drop, v)
			delete(r.variants, key)
		}
	}
	r.entries, r.ident, r.broken = found, ident, broken
	r.mu.Unlock()
	for _, old := range drop {
		// Close waits for a generation still running on the old entry.
		if err := old.model.Close(); err != nil {
			r.log.Warn("unload dropped model", "id", old.info.ID, "err", err)
		}
	}
	return nil
}

// digest fingerprints a folder version for cache keys; a folder that
// cannot be read keeps "" (its id alone keys the cache) until it changes.
func (r *Registry) digest(info Info) string {
	d, err := FolderDigest(info.Dir)
	if err != nil {
		r.log.Warn("model digest", "id", info.ID, "err", err)
		return ""
	}
	return d
}

func (r *Registry) open(id, path string) (*entry, error) {
	m, err := r.openFolder(path)
	if err != nil {
		return nil, err
	}
	var fs folderSettings
	if data, err := os.ReadFile(filepath.Join(path, "sdgate.json")); err == nil {
		if err := json.Unmarshal(data, &fs); err != nil {
			return nil, fmt.Errorf("%w: %s: %v", spec.ErrBadModel, filepath.Join(path, "sdgate.json"), err)
		}
	}
	keep := r.keepAlive
	switch fs.KeepAlive {
	case "":
	case "never":
		keep = -1
	default:
		d, err := time.ParseDuration(fs.KeepAlive)
		if err != nil || d <= 0 {
			return nil, fmt.Errorf("%w: %s: keep_alive %q: want a duration such as 10m, or never", spec.ErrBadModel, filepath.Join(path, "sdgate.json"), fs.KeepAlive)
		}
		keep = d
	}
	maxBatch, window, err := fs.batching(r.batch)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", spec.ErrBadModel, filepath.Join(path, "sdgate.json"), err)
	}
	// The folder's version: the newest of its configs, so editing
	// sdgate.json counts as a change on rescan.
	var created time.Time
	for _, name := range []string{"model_index.json", "sdgate.json"} {
		if st, err := os.Stat(filepath.Join(path, name)); err == nil && st.ModTime().After(created) {
			created = st.ModTime()
		}
	}
	s := m.Spec()
	info := Info{
		ID: id, DisplayName: fs.DisplayName, Dir: path, Created: created, NativeWidth: s.NativeWidth, NativeHeight: s.NativeHeight,
		Family: s.Family, Buckets: s.Buckets,
		DefaultSteps: s.DefaultSteps, DefaultGuidance: s.DefaultGuidance, Scheduler: s.Scheduler,
		Inpainting: s.Inpainting, CanEncode: s.CanEncode, Aliases: fs.Aliases.plain,
		QualitySteps: fs.QualitySteps, StyleGuidance: fs.StyleGuidance,
	}
	r.log.Info("model found", "id", id, "family", s.Family, "native", fmt.Sprintf("%dx%d", s.NativeWidth, s.NativeHeight), "fp16", s.FP16)
	return &entry{info: info, model: m, keepAlive: keep, loraAliases: fs.Aliases.lora, maxBatch: maxBatch, batchWindow: window}, nil
}

func looksLikeModel(dir string) bool {
	for _, p := range []string{"model_index.json", "unet"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			return true
		}
	}
	return false
}

// Models lists the servable models by id.
func (r *Registry) Models() []Info {
	return r.Identity().Models()
}

// Identity is what names mean as of the last rescan.
func (r *Registry) Identity() Identity {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ident
}

// Resolve maps an alias, a model id or "" (the default model) to a
// servable model, as of the last rescan.
func (r *Registry) Resolve(name string) (Info, bool) {
	return r.Identity().Resolve(name)
}

// Aliases are the names that resolve to a model now (alias -> id).
func (r *Registry) Aliases() map[string]string {
	return r.Identity().Aliases()
}

// Default reports the default model in effect and whether it is the
// configured one.
func (r *Registry) Default() DefaultState {
	return r.Identity().Default()
}

// Broken lists the folders that failed validation and why.
func (r *Registry) Broken() []Broken {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append(append([]Broken(nil), r.broken...), r.loadFailuresLocked()...)
}

// DefaultModel is the id used when a request names none.
func (r *Registry) DefaultModel() string { return r.Default().ID }

// Loaded reports whether a model's sessions exist now.
func (r *Registry) Loaded(id string) bool {
	r.mu.Lock()
	e, ok := r.entries[id]
	r.mu.Unlock()
	return ok && e.model.Loaded()
}

// Stats are the load/unload counters.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	resident := 0
	for _, e := range r.allLocked() {
		if e.model.Loaded() {
			resident++
		}
	}
	broken := len(r.broken) + len(r.loadFailuresLocked())
	r.mu.Unlock()
	return Stats{Resident: resident, Broken: broken, Loads: r.loads.Load(), Unloads: r.unloads.Load(), LoadNanos: r.loadNanos.Load(),
		Batches: r.batchSizes.snapshot()}
}

// Ready reports whether the default model can serve: it validated and its
// files are still there (loading it is left to the first request).
func (r *Registry) Ready(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	r.mu.Lock()
	def := r.ident.Default()
	e, ok := r.entries[def.ID]
	r.mu.Unlock()
	if !ok {
		return fmt.Errorf("%w: no default model is servable", ErrModelNotFound)
	}
	if err := r.lastLoadFailed(e); err != nil {
		return err
	}
	if e.model.Loaded() {
		return nil
	}
	if _, err := os.Stat(filepath.Join(e.model.Dir(), "unet", "model.onnx")); err != nil {
		return fmt.Errorf("default model %s: %w", def.ID, err)
	}
	return nil
}

// Generate validates req for the model, then runs it on the worker, loading
// the model first if needed; Result.ModelLoad says what the load cost this
// request. Validation errors come back before queueing.
func (r *Registry) Generate(ctx context.Context, id string, req spec.Request) (spec.Result, error) {
	r.mu.Lock()
	e, ok := r.entries[id]
	r.mu.Unlock()
	if !ok {
		return spec.Result{}, fmt.Errorf("%w: %s", ErrModelNotFound, id)
	}
	applied, err := r.requestLoRAs(e, req.LoRAs)
	if err != nil {
		return spec.Result{}, err
	}
	req.LoRAs = nil // merged into the variant's weights
	if err := e.model.Validate(req); err != nil {
		return spec.Result{}, err
	}
	if err := r.checkBroken(e); err != nil {
		return spec.Result{}, err
	}
	// Requests with LoRAs run on their own variant, alone: a batch shares
	// one set of weights.
	if bp, ok := e.model.(BatchPipeline); ok && e.maxBatch > 1 && len(applied) == 0 {
		if key, err := bp.BatchKey(req); err == nil {
			return r.generateBatched(ctx, e, bp, key, req)
		}
	}
	var res spec.Result
	queued := time.Now()
	err = r.queue.Do(ctx, func(ctx context.Context) error {
		wait := time.Since(queued)
		e, err := r.variantFor(e, applied)
		if err != nil {
			return err
		}
		if !r.acquire(e) {
			return fmt.Errorf("%w: %s (removed by a rescan while queued)", ErrModelNotFound, id)
		}
		defer r.release(e)
		loadTime, err := r.ensureLoaded(ctx, e)
		if err != nil {
			return err
		}
		res, err = e.model.Generate(ctx, req)
		if errors.Is(err, spec.ErrNotLoaded) {
			// The keep-alive janitor unloaded it between our check and the
			// run: load again (we are the worker) and run once more.
			if loadTime, err = r.ensureLoaded(ctx, e); err != nil {
				return err
			}
			res, err = e.model.Generate(ctx, req)
		}
		res.ModelLoad, res.QueueWait = loadTime, wait
		return err
	})
	return res, err
}

// acquire marks e in use; false when a rescan dropped it meanwhile.
func (r *Registry) acquire(e *entry) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e.dropped {
		return false
	}
	e.inUse++
	return true
}

func (r *Registry) release(e *entry) {
	r.mu.Lock()
	e.inUse--
	e.lastUsed = time.Now()
	r.mu.Unlock()
}

// ensureLoaded runs on the worker: loading shares the device with nothing.
// When MaxResident models are loaded it first unloads the least recently
// used idle one.
func (r *Registry) ensureLoaded(ctx context.Context, e *entry) (time.Duration, error) {
	if e.model.Loaded() {
		return 0, nil
	}
	r.makeRoom(e)
	start := time.Now()
	if err := e.model.Load(ctx); err != nil {
		if ctx.Err() != nil { // a cancelled load says nothing about the files
			return 0, fmt.Errorf("load model %s: %w", e.info.ID, err)
		}
		return 0, r.markBroken(e, err)
	}
	r.clearBroken(e)
	took := time.Since(start)
	r.loads.Add(1)
	r.loadNanos.Add(uint64(took))
	r.log.Info("model loaded", "id", e.info.ID, "took", took.Round(time.Millisecond))
	return took, nil
}

func (r *Registry) makeRoom(keep *entry) {
	for {
		r.mu.Lock()
		var victim *entry
		resident := 0
		for _, e := range r.allLocked() {
			if e == keep || !e.model.Loaded() {
				continue
			}
			resident++
			if e.inUse == 0 && (victim == nil || e.lastUsed.Before(victim.lastUsed)) {
				victim = e
			}
		}
		r.mu.Unlock()
		if resident < r.maxResident || victim == nil {
			return
		}
		r.unload(victim, "resident limit")
	}
}

func (r *Registry) unload(e *entry, why string) {
	if err := e.model.Close(); err != nil {
		r.log.Warn("unload model", "id", e.info.ID, "err", err)
	}
	r.unloads.Add(1)
	r.log.Info("model unloaded", "id", e.info.ID, "why", why)
}

// janitor unloads models idle past their keep-alive.
func (r *Registry) janitor() {
	defer close(r.janitorDone)
	tick := time.NewTicker(r.janitorPeriod())
	defer tick.Stop()
	for {
		select {
		case <-r.stop:
			return
		case now := <-tick.C:
			r.unloadIdle(now)
		}
	}
}

// janitorPeriod checks often enough to honour the shortest keep-alive.
func (r *Registry) janitorPeriod() time.Duration {
	p := time.Second
	if r.keepAlive > 0 && r.keepAlive/4 < p {
		p = max(r.keepAlive/4, 10*time.Millisecond)
	}
	return p
}

func (r *Registry) unloadIdle(now time.Time) {
	r.mu.Lock()
	var idle []*entry
	for _, e := range r.allLocked() {
		if e.keepAlive >= 0 && e.inUse == 0 && e.model.Loaded() && now.Sub(e.lastUsed) >= e.keepAlive {
			idle = append(idle, e)
		}
	}
	r.mu.Unlock()
	for _, e := range idle {
		// A job may take e between the check and here; Close then waits
		// for it, and the next job reloads. Re-check to avoid that churn.
		r.mu.Lock()
		busy := e.inUse > 0
		r.mu.Unlock()
		if !busy {
			r.unload(e, "idle")
		}
	}
}

// QueueDepth is the number of jobs waiting for the worker.
func (r *Registry) QueueDepth() int { return r.queue.Depth() }

// Close stops the worker (finishing or cancelling work within ctx) and
// unloads every model. Later calls do nothing.
func (r *Registry) Close(ctx context.Context) error {
	if !r.closed.CompareAndSwap(false, true) {
		return nil
	}
	close(r.stop)
	<-r.janitorDone
	errs := []error{r.queue.Close(ctx)}
	r.mu.Lock()
	entries := r.allLocked()
	r.mu.Unlock()
	for _, e := range entries {
		errs = append(errs, e.model.Close())
	}
	return errors.Join(errs...)
}

// CountTokens counts text's CLIP tokens with the default model's tokenizer.
func (r *Registry) CountTokens(text string) int {
	r.mu.Lock()
	e, ok := r.entries[r.ident.Default().ID]
	r.mu.Unlock()
	if !ok {
		return 0
	}
	return e.model.Tokens(text)
}
