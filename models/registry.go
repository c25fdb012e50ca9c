package models

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/sdgate/sdgate/sd"
)

// RegistryOptions configure a Registry. Runtime and Dir are required.
type RegistryOptions struct {
	Runtime      *sd.Runtime
	Dir          string // one sub-folder per model; its name is the model id
	DefaultModel string // "" = the only model, or the first by name
	QueueSize    int    // jobs that may wait behind the running one
	QueueMaxWait time.Duration
	Logger       *slog.Logger
}

// Broken is a folder that looked like a model but failed validation.
type Broken struct {
	ID  string
	Err error
}

// Registry is the set of servable models and the single GPU worker they
// share. Models are validated at start-up and loaded on first use, inside
// the worker, so a load never overlaps a generation.
type Registry struct {
	rt      *sd.Runtime
	queue   *Queue
	log     *slog.Logger
	def     string
	entries map[string]*entry
	broken  []Broken
}

type entry struct {
	info  Info
	model *sd.Model
}

// NewRegistry scans opts.Dir and starts the worker.
func NewRegistry(opts RegistryOptions) (*Registry, error) {
	if opts.Runtime == nil {
		return nil, errors.New("models: a runtime is required")
	}
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Registry{rt: opts.Runtime, log: logger, entries: map[string]*entry{}}
	if err := r.scan(opts.Dir); err != nil {
		return nil, err
	}
	if len(r.entries) == 0 {
		return nil, fmt.Errorf("models: no usable model in %s (%d broken)", opts.Dir, len(r.broken))
	}
	r.def = opts.DefaultModel
	if r.def == "" {
		r.def = r.ids()[0]
	}
	if _, ok := r.entries[r.def]; !ok {
		return nil, fmt.Errorf("models: default model %q is not among %v", r.def, r.ids())
	}
	r.queue = NewQueue(opts.QueueSize, QueueOptions{MaxWait: opts.QueueMaxWait})
	return r, nil
}

// scan opens every sub-folder that looks like a model. Folders with no
// model_index.json and no unet/ are not models (source code, notes) and are
// passed over; the rest either open or are recorded as broken.
func (r *Registry) scan(dir string) error {
	list, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("models: %w", err)
	}
	for _, d := range list {
		if !d.IsDir() {
			continue
		}
		path := filepath.Join(dir, d.Name())
		if !looksLikeModel(path) {
			continue
		}
		m, err := sd.Open(path)
		if err != nil {
			r.broken = append(r.broken, Broken{ID: d.Name(), Err: err})
			r.log.Error("model folder is not usable", "id", d.Name(), "err", err)
			continue
		}
		created := time.Now()
		if st, err := os.Stat(path); err == nil {
			created = st.ModTime()
		}
		s := m.Spec
		r.entries[d.Name()] = &entry{model: m, info: Info{
			ID: d.Name(), Created: created, NativeWidth: s.NativeWidth, NativeHeight: s.NativeHeight,
			DefaultSteps: s.DefaultSteps, DefaultGuidance: s.DefaultGuidance, Scheduler: s.Scheduler,
			Inpainting: s.Inpainting, CanEncode: s.CanEncode,
		}}
		r.log.Info("model found", "id", d.Name(), "native", fmt.Sprintf("%dx%d", s.NativeWidth, s.NativeHeight), "fp16", s.FP16)
	}
	return nil
}

func looksLikeModel(dir string) bool {
	for _, p := range []string{"model_index.json", "unet"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err == nil {
			return true
		}
	}
	return false
}

func (r *Registry) ids() []string {
	ids := make([]string, 0, len(r.entries))
	for id := range r.entries {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

// Models lists the servable models by id.
func (r *Registry) Models() []Info {
	out := make([]Info, 0, len(r.entries))
	for _, id := range r.ids() {
		out = append(out, r.entries[id].info)
	}
	return out
}

// Broken lists the folders that failed validation and why.
func (r *Registry) Broken() []Broken { return append([]Broken(nil), r.broken...) }

// DefaultModel is the id used when a request names none.
func (r *Registry) DefaultModel() string { return r.def }

// Ready reports whether the default model can serve: it validated at
// start-up, and its sessions are loaded or can be created.
func (r *Registry) Ready(ctx context.Context) error {
	e := r.entries[r.def]
	if err := ctx.Err(); err != nil || e.model.Loaded() {
		return err
	}
	// Not loaded yet: the folder validated at start-up; check it is still there.
	if _, err := os.Stat(filepath.Join(e.model.Dir, "unet", "model.onnx")); err != nil {
		return fmt.Errorf("default model %s: %w", r.def, err)
	}
	return nil
}

// Generate validates req for the model, then runs it on the worker, loading
// the model first if needed. Validation errors come back before queueing.
func (r *Registry) Generate(ctx context.Context, id string, req sd.Request) (sd.Result, error) {
	e, ok := r.entries[id]
	if !ok {
		return sd.Result{}, fmt.Errorf("%w: %s", ErrModelNotFound, id)
	}
	if err := e.model.Validate(req); err != nil {
		return sd.Result{}, err
	}
	var res sd.Result
	err := r.queue.Do(ctx, func(ctx context.Context) error {
		if err := r.ensureLoaded(ctx, e); err != nil {
			return err
		}
		var err error
		res, err = e.model.Generate(ctx, req)
		return err
	})
	return res, err
}

// ensureLoaded runs on the worker: loading shares the device with nothing.
func (r *Registry) ensureLoaded(ctx context.Context, e *entry) error {
	if e.model.Loaded() {
		return nil
	}
	start := time.Now()
	if err := e.model.Load(ctx, r.rt, sd.LoadOptions{}); err != nil {
		return fmt.Errorf("load model %s: %w", e.info.ID, err)
	}
	r.log.Info("model loaded", "id", e.info.ID, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// QueueDepth is the number of jobs waiting or running.
func (r *Registry) QueueDepth() int { return r.queue.Depth() }

// Close stops the worker (finishing or cancelling work within ctx) and
// unloads every model.
func (r *Registry) Close(ctx context.Context) error {
	errs := []error{r.queue.Close(ctx)}
	for _, e := range r.entries {
		errs = append(errs, e.model.Close())
	}
	return errors.Join(errs...)
}
