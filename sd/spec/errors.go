package spec

import (
	"errors"
	"fmt"
)

var (
	// ErrInvalidRequest marks a Request that validation refused; errors.As
	// with *ParamError tells which field.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrOutOfMemory: a session or a run needed more memory than the device had.
	ErrOutOfMemory = errors.New("out of memory")
	// ErrBadModel: the folder is not a usable Stable Diffusion model. The
	// wrapped message names the file and what is wrong with it.
	ErrBadModel = errors.New("not a usable Stable Diffusion model")
	// ErrNotLoaded: the model's sessions are not (or no longer) loaded.
	ErrNotLoaded = errors.New("model not loaded")
)

// ParamError says which request field is out of range and why. Param uses the
// OpenAI / sdgate wire name of the field (size, n, steps, guidance_scale, ...).
type ParamError struct {
	Param   string
	Message string
}

func (e *ParamError) Error() string { return fmt.Sprintf("%s: %s", e.Param, e.Message) }

// Unwrap lets errors.Is(err, ErrInvalidRequest) hold for every ParamError.
func (e *ParamError) Unwrap() error { return ErrInvalidRequest }
