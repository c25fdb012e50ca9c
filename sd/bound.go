package sd

import "context"

// Pipeline is a model folder bound to the runtime that loads it: the shape
// the model registry drives (models.Pipeline), which cannot name sd's types
// because it builds without cgo.
type Pipeline struct {
	model *Model
	rt    *Runtime
	opts  LoadOptions
}

// OpenPipeline opens the folder at dir (see Open) for loading on rt later.
func (rt *Runtime) OpenPipeline(dir string) (*Pipeline, error) {
	return rt.OpenPipelineWith(dir, LoadOptions{})
}

// OpenPipelineWith is OpenPipeline loading with opts: a LoRA variant of a
// folder is one with a Rewrite that merges the LoRAs. Each pipeline has
// its own sessions; variants of one folder share nothing mutable.
func (rt *Runtime) OpenPipelineWith(dir string, opts LoadOptions) (*Pipeline, error) {
	m, err := Open(rt, dir)
	if err != nil {
		return nil, err
	}
	return &Pipeline{model: m, rt: rt, opts: opts}, nil
}

// Spec is what the folder's configs say about the model.
func (p *Pipeline) Spec() Spec { return p.model.Spec }

// Dir is the model folder.
func (p *Pipeline) Dir() string { return p.model.Dir }

// Load creates the sessions, the VAE encoder's included (edits need it).
func (p *Pipeline) Load(ctx context.Context) error {
	return p.model.Load(ctx, p.rt, p.opts)
}

func (p *Pipeline) Loaded() bool               { return p.model.Loaded() }
func (p *Pipeline) Validate(req Request) error { return p.model.Validate(req) }
func (p *Pipeline) Tokens(text string) int     { return p.model.Tokens(text) }
func (p *Pipeline) Close() error               { return p.model.Close() }

func (p *Pipeline) Generate(ctx context.Context, req Request) (Result, error) {
	return p.model.Generate(ctx, req)
}
