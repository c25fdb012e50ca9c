package models

import (
	"context"

	"github.com/sdgate/sdgate/sd/spec"
)

// Pipeline is one model folder as the registry drives it: opened cheaply
// at scan time, loaded on first use, closed after its keep-alive. The
// ONNX pipeline (sd.Pipeline) is one; declaring it here keeps models free
// of cgo, so it builds, vets and tests its logic without ONNX Runtime.
type Pipeline interface {
	Spec() spec.Model
	Dir() string
	Validate(req spec.Request) error
	Load(ctx context.Context) error
	Loaded() bool
	Generate(ctx context.Context, req spec.Request) (spec.Result, error)
	Tokens(text string) int
	Close() error
}

// Opener opens the model folder at dir without loading it; an error that
// wraps spec.ErrBadModel names the file and what is wrong with it.
type Opener func(dir string) (Pipeline, error)

// OpenWith adapts an opener of a concrete pipeline type, e.g.
// OpenWith(runtime.OpenPipeline).
func OpenWith[P Pipeline](open func(dir string) (P, error)) Opener {
	return func(dir string) (Pipeline, error) {
		p, err := open(dir)
		if err != nil {
			return nil, err
		}
		return p, nil
	}
}
